"""Request/response logging middleware (the seed's, with a monotonic clock)."""

import logging
import time

from httpy import Request, add_middleware

logger = logging.getLogger("httpy.example")


async def logging_middleware(request: Request, handler):
    start_time = time.perf_counter()
    logger.info("Request: %s %s", request.method, request.path)
    response = await handler(request)
    logger.info("Response: %s - %.4fs", response.status, time.perf_counter() - start_time)
    return response


add_middleware(logging_middleware)
