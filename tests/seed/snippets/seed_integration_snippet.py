# ruff: noqa
# fmt: off
"""Seed: Integration Testing (run by test_seed_snippets.py with pytest in asyncio auto mode,
from examples/project, where ``python app.py`` starts the example app on port 8080).

Between the BEGIN/END markers: verbatim from ../shared/seed/ADVANCED_USAGE.md
(checked by test_seed_snippets.py::test_snippets_are_verbatim).  Outside them: glue.
"""
# --- BEGIN SEED SNIPPET 11 ---
import pytest
import asyncio
import aiohttp
import subprocess
import time
import signal
import os

@pytest.fixture
async def server():
    # Start the server in a subprocess
    process = subprocess.Popen(["python", "app.py"])
    
    # Wait for server to start
    time.sleep(2)
    
    yield
    
    # Stop the server
    process.send_signal(signal.SIGINT)
    process.wait()

@pytest.mark.asyncio
async def test_api_integration(server):
    async with aiohttp.ClientSession() as session:
        # Test GET request
        async with session.get("http://localhost:8080/api/users") as response:
            assert response.status == 200
            data = await response.json()
            assert isinstance(data, list)
        
        # Test POST request
        user_data = {"name": "New User", "email": "new@example.com"}
        async with session.post("http://localhost:8080/api/users", json=user_data) as response:
            assert response.status == 201
            data = await response.json()
            assert data["name"] == "New User"
            user_id = data["id"]
        
        # Test GET specific user
        async with session.get(f"http://localhost:8080/api/users/{user_id}") as response:
            assert response.status == 200
            data = await response.json()
            assert data["name"] == "New User"
# --- END SEED SNIPPET 11 ---
