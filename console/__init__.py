"""The web console: users and roles, sessions, and the operator, supervisor, city and admin
views served by the engine itself (no CDN)."""
