"""The seed's "larger project" layout as a runnable app: ``python app.py`` serves
http://0.0.0.0:8080 (the port the seed's integration test expects).

Routes register on HTTPy's default app when their modules are imported; middleware
registers itself the same way.
"""

import asyncio
import os

# Import middleware
from middleware import auth, logging  # noqa: F401

# Import all routes
from routes import api, files, pages  # noqa: F401  (importing registers the routes)

from httpy import run

if __name__ == "__main__":
    # Run the server
    asyncio.run(
        run(host=os.environ.get("HOST", "0.0.0.0"), port=int(os.environ.get("PORT", "8080")))
    )
