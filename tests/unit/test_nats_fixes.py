"""nats-py and a server gone between the client's CONNECT and the server's PONG: nats-py 2.10's read loop
spun there without yielding and froze the whole service (nats.py#490; shared.bus.nats_fixes fixed it until
nats-py did, by 2.16). Kept as a check on every upgrade of the bus client."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

# A server that sends INFO, reads the client's CONNECT and PING, and closes the connection before its PONG
# — what a NATS server killed at that moment does. (A real nats-server cannot be made to die at exactly
# that point; this one does it every time.) The client runs in a process of its own, as a service makes it
# (shared.bus.nats_fixes applied): were its event loop to spin for good, only a kill would end it.
GONE_BEFORE_PONG = textwrap.dedent("""
    import asyncio, socket, sys, threading
    from shared.bus import jetstream  # noqa: F401  (applies shared.bus.nats_fixes, as in a service)
    import nats

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def server():
        conn, _ = listener.accept()
        conn.sendall(b'INFO {"server_id":"gone","version":"2.10.0","host":"127.0.0.1","port":%d,'
                     b'"max_payload":1048576,"proto":1,"headers":true}\\r\\n' % port)
        seen = b""
        while b"PING" not in seen:
            seen += conn.recv(4096)
        conn.close()

    threading.Thread(target=server, daemon=True).start()

    async def main():
        nc = await nats.connect(f"nats://127.0.0.1:{port}", allow_reconnect=False, connect_timeout=2)
        await asyncio.sleep(0.5)  # the client's read loop runs here
        print("event loop alive; connected:", nc.is_connected)

    asyncio.run(main())
""")


def test_a_server_gone_between_connect_and_pong_leaves_the_event_loop_running():
    repo = Path(__file__).resolve().parents[2]
    try:
        done = subprocess.run([sys.executable, "-c", GONE_BEFORE_PONG], capture_output=True, text=True,
                              timeout=10, cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)})
    except subprocess.TimeoutExpired:
        raise AssertionError("the client's event loop froze (nats-py's read loop spun at the end of the stream)")
    assert done.returncode == 0 and "event loop alive; connected: False" in done.stdout, done.stdout + done.stderr
