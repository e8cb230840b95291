"""The admin console: logins, and (to come) warehouses, partners, settings and imports."""
