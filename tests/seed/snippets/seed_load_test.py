# ruff: noqa
# fmt: off
"""Seed: Load Testing, run against the example project app on port 8080.

Between the BEGIN/END markers: verbatim from ../shared/seed/ADVANCED_USAGE.md
(checked by test_seed_snippets.py::test_snippets_are_verbatim).  Outside them: glue.
"""
# --- BEGIN SEED SNIPPET 12 ---
import asyncio
import aiohttp
import time
import statistics

async def load_test(url, num_requests, concurrency):
    semaphore = asyncio.Semaphore(concurrency)
    start_time = time.time()
    response_times = []
    
    async def make_request():
        async with semaphore:
            req_start = time.time()
            async with aiohttp.ClientSession() as session:
                async with session.get(url) as response:
                    await response.text()
                    req_time = time.time() - req_start
                    response_times.append(req_time)
    
    # Create tasks for all requests
    tasks = [make_request() for _ in range(num_requests)]
    
    # Run all tasks
    await asyncio.gather(*tasks)
    
    # Calculate statistics
    total_time = time.time() - start_time
    avg_time = statistics.mean(response_times)
    min_time = min(response_times)
    max_time = max(response_times)
    p95_time = sorted(response_times)[int(len(response_times) * 0.95)]
    
    return {
        "total_requests": num_requests,
        "concurrency": concurrency,
        "total_time": total_time,
        "requests_per_second": num_requests / total_time,
        "avg_response_time": avg_time,
        "min_response_time": min_time,
        "max_response_time": max_time,
        "p95_response_time": p95_time
    }

# Run the load test
async def run_load_test():
    results = await load_test("http://localhost:8080/api/users", 1000, 100)
    print(f"Requests per second: {results['requests_per_second']:.2f}")
    print(f"Average response time: {results['avg_response_time'] * 1000:.2f}ms")
    print(f"95th percentile response time: {results['p95_response_time'] * 1000:.2f}ms")

# asyncio.run(run_load_test())
# --- END SEED SNIPPET 12 ---

if __name__ == "__main__":  # glue: the snippet leaves the call commented out
    asyncio.run(run_load_test())
