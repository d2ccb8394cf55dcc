"""Service levels: the city's KPIs, interaction records, staffing and the monthly report."""
