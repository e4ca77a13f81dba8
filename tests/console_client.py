"""Signing in to the supervisor console in tests: the test password, a client, a login, the CSRF token."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

PASSWORD = "correct horse battery"


def client_for(app, base_url="http://testserver"):
    return TestClient(app, base_url=base_url, follow_redirects=False)


def login(app, name, password=PASSWORD, base_url="http://testserver"):
    client = client_for(app, base_url)
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    response = client.post("/login", data={"username": name, "password": password, "csrf": csrf, "next": "/calls"})
    return client, response


def csrf_of(client):
    page = client.get("/calls")
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
