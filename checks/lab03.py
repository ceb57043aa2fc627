"""Lab 03 (Lambda microservice): the orders function, its role, and requests end to end."""
