"""The console's routes, one module per area; each has `register(app, console)` (ivr.console.app calls them):
login (and logout, health), calls (list, call page, its API, recording and export), live, admin (users, audit),
webhooks (the webhook outbox's dead letters, retry).
"""
