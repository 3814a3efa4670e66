"""Agent scripts run as subprocesses and driven over stdin/stdout like the node drives them
(spec/agent-protocol.md); every line they write is checked against the protocol rules."""

from pathlib import Path
from typing import Callable

from fake_node import HIRE_ID, FakeNode

Spawn = Callable[..., FakeNode]


def test_start_steps_result(spawn: Spawn) -> None:
    node = spawn("basic.py")
    node.start({"items": [1, 2, 3]})
    assert node.expect("decision") == {"type": "decision", "text": "summing 3 items"}
    for i, x in enumerate([1, 2, 3]):
        call = node.expect("tool_call")
        assert call == {"type": "tool_call", "tool": "square", "args": {"x": x}, "result": x * x}
        assert node.expect("checkpoint")["state"] == {
            "done": i + 1,
            "total": sum(y * y for y in [1, 2, 3][: i + 1]),
        }
    assert node.expect("note")["text"] == "all done"
    result = node.expect("result")
    assert result == {
        "type": "result",
        "output": {"count": 3, "sum_of_squares": 14, "hire": HIRE_ID[:8]},
    }
    assert node.finish() == 0


def test_resume_from_checkpoint(spawn: Spawn) -> None:
    first = spawn("basic.py")
    first.start({"items": [2, 3, 4]})
    first.expect("decision")
    first.expect("tool_call")
    first.expect("checkpoint")
    first.expect("tool_call")
    state = first.expect("checkpoint")["state"]
    first.kill()  # the provider crashed: the node restarts the agent from the last state

    second = spawn("basic.py")
    second.start({"items": [2, 3, 4]}, checkpoint=state)
    assert second.expect("decision")["text"] == "resuming after 2 of 3 items"
    assert second.expect("tool_call")["args"] == {"x": 4}
    assert second.expect("checkpoint")["state"] == {"done": 3, "total": 4 + 9 + 16}
    second.expect("note")
    assert second.expect("result")["output"]["sum_of_squares"] == 29
    assert second.finish() == 0


def test_tool_calls_as_decorators_and_context_managers(spawn: Spawn) -> None:
    node = spawn("tools_agent.py")
    node.start(None)
    calls = [node.expect("tool_call") for _ in range(8)]
    assert [(c["tool"], c["args"], c["result"]) for c in calls] == [
        ("word-count", {"text": "a B b", "lower": True}, {"a": 1, "b": 2}),
        ("shout", {"text": "hey", "times": 2}, "HEY!HEY"),
        ("lookup", {"key": "k", "fallback": True}, {"value": 42}),
        ("no-result", [1, 2], None),
        ("explode", {"n": 1}, {"error": {"type": "RuntimeError", "message": "secret detail"}}),
        (
            "divide-numbers",
            {"a": 1, "b": 0},
            {"error": {"type": "ZeroDivisionError", "message": "division by zero"}},
        ),
        ("store-add", {"item": "x"}, 1),
        ("already-done", {"q": 1}, [1, 2, 3]),
    ]
    output = node.expect("result")["output"]
    assert (
        output["shout"] == "HEY!HEY"
        and output["explode"] == "caught"
        and output["divide"] == "caught"
    )
    assert node.finish() == 0


def test_agent_error(spawn: Spawn) -> None:
    node = spawn("fail.py")
    node.start({"how": "agent-error"})
    node.expect("note")
    assert node.expect("error")["message"] == "the delimiter must be one character"
    assert node.finish() == 0


def test_unexpected_exception_is_an_error_without_private_text(spawn: Spawn) -> None:
    node = spawn("fail.py")
    node.start({"how": "crash", "secret": "s3cr3t"})
    node.expect("note")
    error = node.expect("error")
    assert error["message"] == "internal error: KeyError"
    assert node.finish() == 0
    # The traceback, with the detail, goes to the provider's log only.
    assert "s3cr3t" in node.stderr() and "Traceback" in node.stderr()


def test_explicit_error_is_cut_to_512_bytes(spawn: Spawn) -> None:
    node = spawn("fail.py")
    node.start({"how": "explicit-error"})
    node.expect("note")
    assert node.expect("error")["message"] == "é" * 256
    assert node.finish() == 0


def test_output_over_the_line_limit_is_refused(spawn: Spawn) -> None:
    node = spawn("fail.py")
    node.start({"how": "line-too-long"})
    node.expect("note")
    message = node.expect("error")["message"]
    assert message == "the result message is %d bytes; the line limit is 524288" % (
        600 * 1024 + len('{"output":{"blob":""},"type":"result"}')
    )
    assert node.finish() == 0


def test_output_over_1_mib_is_refused(spawn: Spawn) -> None:
    node = spawn("fail.py", "big")  # lines up to 2 MiB allowed, the output limit still holds
    node.start(None)
    message = node.expect("error")["message"]
    assert message == "the output is %d bytes; the limit is 1048576" % (
        1024 * 1024 + 1 + len('{"blob":""}')
    )
    assert node.finish() == 0


def test_output_that_is_not_json_is_an_error(spawn: Spawn) -> None:
    for how, reason in [
        ("not-json", "Object of type set is not JSON serializable"),
        ("nan", "Out of range float values"),
    ]:
        node = spawn("fail.py")
        node.start({"how": how})
        node.expect("note")
        message = node.expect("error")["message"]
        assert message.startswith("the output is not JSON: " + reason), message
        assert node.finish() == 0


def test_oversized_step_raises_in_the_agent(spawn: Spawn) -> None:
    node = spawn("fail.py")
    node.start({"how": "note-too-large"})
    node.expect("note")
    size = 512 * 1024 + len('{"text":"","type":"note"}')
    assert node.expect("note")["text"] == "refused: %d > 524288" % size
    assert node.expect("result")["output"] == {"ok": True}
    assert node.finish() == 0


def test_ask_answer_round_trip(spawn: Spawn) -> None:
    node = spawn("ask.py")
    node.start({})
    node.expect("decision")
    question = node.expect("question")["question"]
    assert question == {
        "text": "Please send the CSV",
        "answer_schema": {
            "type": "object",
            "required": ["csv"],
            "properties": {"csv": {"type": "string"}},
        },
    }
    node.answer({"csv": "a,b\n1,2\n3,4\n"})
    assert node.expect("checkpoint")["state"] == {"csv": "a,b\n1,2\n3,4\n"}
    assert node.expect("question")["question"] == {
        "text": "How many rows to keep?",
        "answer_schema": {"type": "integer", "minimum": 1},
    }
    node.answer(2)
    assert node.expect("result")["output"] == {"rows": 3, "keep": 2}
    assert node.finish() == 0


def test_resumed_agent_asks_again_with_the_answer_in_its_checkpoint(spawn: Spawn) -> None:
    node = spawn("ask.py")
    node.start({}, checkpoint={"csv": "a\n1\n"})
    node.expect("question")
    node.answer(1)
    assert node.expect("result")["output"] == {"rows": 2, "keep": 1}
    assert node.finish() == 0


def test_wrong_answer_shape_is_an_agent_error(spawn: Spawn) -> None:
    node = spawn("ask.py")
    node.start({})
    node.expect("decision")
    node.expect("question")
    node.answer("not an object")
    assert node.expect("error")["message"] == 'the answer must be {"csv": text}'
    assert node.finish() == 0


def test_cancel_while_asking(spawn: Spawn) -> None:
    node = spawn("ask.py")
    node.start({})
    node.expect("decision")
    node.expect("question")
    node.cancel("client canceled")
    node.expect_eof()  # nothing after cancel
    assert node.wait() == 0
    assert "canceled while asking: client canceled" in node.stderr()


def test_cancel_while_working_raises_at_the_next_sdk_call(spawn: Spawn) -> None:
    node = spawn("cancel_work.py")
    node.start({"mode": "cooperative"})
    node.expect("note")
    node.cancel("provider shutting down")
    node.expect_eof()
    assert node.wait() == 0
    err = node.stderr()
    assert "saw cancel: provider shutting down" in err and "note raised Cancelled" in err


def test_cancel_stops_a_handler_that_never_calls_the_sdk(spawn: Spawn) -> None:
    node = spawn("cancel_work.py")
    node.start({"mode": "busy"})
    node.expect("note")
    node.cancel()
    node.expect_eof()
    assert node.wait() == 0
    assert "did not stop within 0.2s" in node.stderr()


def test_stdin_closed_while_asking_ends_with_an_error(spawn: Spawn) -> None:
    node = spawn("ask.py")
    node.start({})
    node.expect("decision")
    node.expect("question")
    node.close_stdin()
    assert node.expect("error")["message"] == "stdin closed while waiting for an answer"
    assert node.finish() == 0


def test_stdin_closed_before_start(spawn: Spawn) -> None:
    node = spawn("basic.py")
    node.close_stdin()
    node.expect_eof()
    assert node.wait() == 2
    assert "stdin ended before the start message" in node.stderr()


def test_cancel_before_start(spawn: Spawn) -> None:
    node = spawn("basic.py")
    node.cancel()
    node.expect_eof()
    assert node.wait() == 0


def test_framing_tolerance(spawn: Spawn) -> None:
    node = spawn("class_agent.py")
    node.write(b"\n   \r\n")  # blank lines are ignored
    node.write(b"this is not json\n")  # ignored, logged
    node.write(b'{"type":"hello","x":1}\n')  # unknown type: ignored, logged
    node.write(b'{"type":"answer","answer":1}\n')  # no question: ignored
    # CRLF, unknown members, and a last line without LF at the end of the stream.
    node.write(
        b'{ "type" : "start", "input" : [1, "x"], "checkpoint" : null, '
        b'"hire_id" : "%s", "future" : true }\r' % HIRE_ID.encode()
    )
    node.close_stdin()
    node.expect("decision")
    assert node.expect("result")["output"] == {"echo": "got: [1, 'x']"}
    assert node.finish() == 0
    err = node.stderr()
    assert "ignoring a line from the node: not valid JSON" in err
    assert "unknown type 'hello'" in err
    assert "no question is waiting" in err


def test_stray_stdout_and_stdin_do_not_touch_the_protocol(spawn: Spawn) -> None:
    node = spawn("stray_io.py")
    node.start({"secret": "input"})
    assert node.expect("note")["text"] == "io done"
    assert node.expect("result")["output"] == {"stdin": "", "child": 0}
    assert node.finish() == 0
    err = node.stderr()
    for text in ["stray print from the handler", "child stdout", "''", "stray print before main"]:
        assert text in err


def test_conversation_rules_are_enforced_by_the_sdk(spawn: Spawn) -> None:
    node = spawn("misuse.py")
    node.start(None)
    node.expect("question")
    node.answer("yes")
    notes = []
    while True:
        msg = node.recv()
        if msg["type"] != "note":
            break
        notes.append(msg["text"])
    # max_messages=8: the question, six notes, and the result.
    assert notes == ["n%d" % i for i in range(6)]
    assert msg["type"] == "result"
    assert msg["output"]["answer"] == "yes"
    caught = msg["output"]["caught"]
    assert caught[:6] == [
        "a checkpoint state cannot be null",
        "decision text must be a string, not int",
        "a tool name must be 1 to 512 bytes of UTF-8, not 0",
        "a tool name must be 1 to 512 bytes of UTF-8, not 513",
        "a question cannot be null",
        "answer_schema needs a question that is a JSON object",
    ]
    # (Python 3.13 appends ": nan".)
    assert caught[6].startswith(
        "the checkpoint message is not JSON: Out of range float values are not JSON compliant"
    )
    assert caught[7:] == [
        "cannot send note: a run may send at most 8 messages, the final one included"
    ]
    assert node.finish() == 0
    assert "after result: cannot send note: the final message was already sent" in node.stderr()


def test_class_agent(spawn: Spawn) -> None:
    node = spawn("class_agent.py")
    node.start("hi")
    node.expect("decision")
    assert node.expect("result")["output"] == {"echo": "got: hi"}
    assert node.finish() == 0


def test_readme_example(spawn: Spawn, tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```\n", 1)[0]
    script = tmp_path / "readme_agent.py"
    script.write_text(code)
    node = spawn(str(script))
    node.start({})
    assert node.expect("question")["question"] == {
        "text": "Which words?",
        "answer_schema": {"type": "array", "items": {"type": "string"}},
    }
    node.answer(["ab", "cde"])
    node.expect("decision")
    assert node.expect("tool_call")["result"] == 2
    state = node.expect("checkpoint")["state"]
    assert state == {"done": 1, "total": 2, "words": ["ab", "cde"]}
    node.kill()
    resumed = spawn(str(script))
    resumed.start({}, checkpoint=state)  # the answer is in the checkpoint: no second question
    assert resumed.expect("decision")["text"] == "measuring 2 words"
    assert resumed.expect("tool_call")["args"] == {"word": "cde"}
    resumed.expect("checkpoint")
    assert resumed.expect("result")["output"] == {"words": 2, "letters": 5}
    assert resumed.finish() == 0
