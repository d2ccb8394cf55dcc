"""Satisfaction data: calls marked for the post-call survey, the survey's answers, and the
city staff's monthly ratings. The scores are computed by kpi/."""
