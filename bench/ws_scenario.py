"""The WebSocket echo scenario: round trips per second over one connection."""

from __future__ import annotations

import json

from bench.scenarios import (
    BENCH_DIR,
    MAIN_PYTHON,
    Context,
    Measurement,
    Profile,
    Scenario,
    ScenarioError,
    Skipped,
    load_command,
    run_tool,
)


class WebSocketEchoScenario(Scenario):
    """``bench/ws_echo.py`` on the load CPU: one connection, one message in flight."""

    key = "ws-echo"
    title = "WebSocket echo round trips, one connection"
    description = (
        "`bench/ws_echo.py` (websockets client, no compression) sends `Hello, world!` to "
        "`/ws` and waits for the echo, one message in flight over one connection, for D "
        "seconds after 100 warm-up round trips; requests/s = round trips per second."
    )

    def estimate(self, profile: Profile, h2c_hint: bool) -> float:
        return profile.duration + 1.5

    def run(self, ctx: Context) -> Measurement:
        duration = max(1.0, ctx.profile.duration)
        argv = load_command(
            str(MAIN_PYTHON), str(BENCH_DIR / "ws_echo.py"), "--port", str(ctx.server.port),
            "--duration", str(duration),
        )  # fmt: skip
        output = run_tool(argv, timeout=duration + 30)
        ctx.server.check_alive()
        lines = [line for line in output.splitlines() if line.startswith("{")]
        if not lines:
            raise ScenarioError(f"no result from ws_echo.py: {output.strip()[-200:]}")
        result = json.loads(lines[-1])
        if "error" in result:
            raise Skipped(str(result["error"]), status="n/a")
        m = Measurement(ctx.server.spec.key, self.key, ctx.repeat, raw=output)
        m.rps, m.p50_ms, m.p99_ms = result["rps"], result["p50_ms"], result["p99_ms"]
        m.extra = {"round_trips": result["round_trips"]}
        return m
