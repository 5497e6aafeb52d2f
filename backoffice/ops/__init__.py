"""The top floor: dashboard, API, reports, incidents, retention. Imports the apps."""
