"""Works until canceled: cooperatively (mode "cooperative"), or not at all ("busy")."""

import sys
from typing import Any

from souk_agent import Cancelled, Context, agent


@agent(cancel_grace=0.2)
def run(ctx: Context, input: Any) -> Any:
    ctx.note("working")
    if input["mode"] == "busy":
        while True:  # never calls the SDK: the SDK ends the process after cancel_grace
            pass
    ctx.wait_cancelled()
    sys.stderr.write("saw cancel: %s\n" % ctx.cancel_reason)
    try:
        ctx.note("still here")  # raises: nothing is written after cancel
    except Cancelled:
        sys.stderr.write("note raised Cancelled\n")
        raise
    return {"unreachable": True}


if __name__ == "__main__":
    run.main()
