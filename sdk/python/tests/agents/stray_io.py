"""Prints, reads stdin and runs a child that writes to stdout: none of it may reach the
protocol."""

import subprocess
import sys
from typing import Any

from souk_agent import Context, agent


@agent
def run(ctx: Context, input: Any) -> Any:
    print("stray print from the handler")
    sys.stdout.flush()
    got = sys.stdin.read()
    child = subprocess.run(
        [sys.executable, "-c", "import sys; print('child stdout'); print(repr(sys.stdin.read()))"],
        check=True,
    )
    ctx.note("io done")
    return {"stdin": got, "child": child.returncode}


if __name__ == "__main__":
    print("stray print before main")
    run.main()
