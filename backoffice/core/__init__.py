"""The ground floor: shared infrastructure the apps import. Imports no app and nothing of ops."""
