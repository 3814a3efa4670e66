#!/usr/bin/env python3
"""research-agent: a Souk example agent that researches a topic through an HTTP search API.

A small explicit graph, in the style of LangGraph, run on the Python SDK (sdk/python):

    clarify -> plan -> search -> read -> synthesize -> (result)
       ^                  |
       +-- no sources ----+

Each node takes the state and returns the next one, naming the node to run after it; the
agent checkpoints after every node, so a run resumed by the node (after a provider restart)
continues at the next node without repeating the HTTP calls already made. Every HTTP call is
recorded as a tool call (url and query; status and a short digest of the body).

The network is reached only through the node's egress proxy (HTTP_PROXY, which urllib reads).
URLs are plain http://: the proxy opens TLS to the host itself, and when the client granted the
"search-api" credential it adds the `authorization` header. The agent never sees the token.

Input {"topic"?: str, "api"?: base URL, "max_sources"?: 1..10, "timeout_secs"?: 1..120}.
Output {"topic", "summary", "sources": [{"id", "title", "url", "points"}]}.
"""
import json
import os
import re
import socket
import sys
import urllib.error
import urllib.request
from http.client import HTTPException
from urllib.parse import quote, urlencode, urlsplit

sys.path[:0] = [d for d in os.environ.get("SOUK_INCLUDE", "").split(os.pathsep) if d] or [
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "sdk", "python", "src")
]

from souk_agent import AgentError, Context, agent  # noqa: E402

API_HOSTS = ["search.example.test"]  # keep in step with `hosts` in agent.toml (a test checks)
DEFAULT_API = "http://search.example.test"
MAX_QUERIES, MAX_QUESTIONS, MAX_BODY = 4, 2, 1 << 20
ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")  # document ids we put in a path
SEPARATORS = r",|;|\band\b|\bvs\b\.?|\bversus\b"  # "raft and paxos" -> raft, paxos
TOPIC_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 200}
END = "end"
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler())  # proxies from the env


def settings(job):
    """The validated job input (topic aside): api base URL, its host, max_sources, timeout."""
    if not isinstance(job, dict):
        raise AgentError("the input must be a JSON object")
    api = job.get("api", DEFAULT_API)
    url = urlsplit(api) if isinstance(api, str) else None
    if url is None or url.scheme != "http" or url.username or url.query or url.fragment:
        raise AgentError("api must be a plain http:// base URL (the egress proxy adds TLS)")
    try:
        port = url.port
    except ValueError:
        raise AgentError("api has an invalid port") from None
    host = (url.hostname or "") + (":%d" % port if port not in (None, 443) else "")
    if host not in API_HOSTS:
        raise AgentError("api must be on a host this agent may reach: %s" % ", ".join(API_HOSTS))
    limits = {"max_sources": (3, 1, 10), "timeout_secs": (30, 1, 120)}
    out = {"api": api.rstrip("/"), "host": host, "prefix": url.path.rstrip("/")}
    for key, (default, low, high) in limits.items():
        value = job.get(key, default)
        if type(value) is not int or not low <= value <= high:
            raise AgentError("%s must be an integer from %d to %d" % (key, low, high))
        out[key] = value
    return out


def get_json(cfg, path, query=None):
    """GET api+path through the proxy: (status, body size, parsed JSON). Errors name the host,
    the path and the status, never the query (error messages are public in the receipt)."""
    where = "GET %s%s" % (cfg["prefix"], path)
    url = cfg["api"] + path + ("?" + urlencode(query) if query else "")
    request = urllib.request.Request(url, headers={"accept": "application/json"})
    try:
        with OPENER.open(request, timeout=cfg["timeout_secs"]) as response:
            status, body = response.status, response.read(MAX_BODY + 1)
    except urllib.error.HTTPError as e:
        raise AgentError(http_error(cfg, where, e)) from None
    except (urllib.error.URLError, HTTPException, OSError) as e:  # no answer at all
        reason = getattr(e, "reason", e)
        if isinstance(reason, (TimeoutError, socket.timeout)):
            why = "timed out after %ds" % cfg["timeout_secs"]
        else:
            why = "failed (%s)" % (getattr(reason, "strerror", None) or type(reason).__name__)
        raise AgentError("%s to %s %s" % (where, cfg["host"], why)) from None
    if len(body) > MAX_BODY:
        raise AgentError("%s: %s sent more than %d bytes" % (where, cfg["host"], MAX_BODY))
    try:
        return status, len(body), json.loads(body)
    except ValueError:
        raise AgentError("%s: %s answered %d with a body that is not JSON"
                         % (where, cfg["host"], status)) from None


def http_error(cfg, where, e):
    """A public message for an HTTP error status, from the upstream or the egress proxy."""
    try:
        denial = json.loads(e.read(65536))
    except (ValueError, OSError, HTTPException):
        denial = None
    if isinstance(denial, dict) and set(denial) == {"error", "host", "message", "retry"}:
        return "the egress proxy refused %s to %s: %s (%s)" % (
            where, cfg["host"], str(denial["error"])[:64], str(denial["message"])[:200])
    text = "the search API at %s answered HTTP %d to %s" % (cfg["host"], e.code, where)
    if e.code in (401, 403):
        if os.environ.get("SOUK_CREDENTIAL_SEARCH_API"):
            text += " (the client's search-api credential was refused)"
        else:
            text += " (hire with a search-api credential: --credential search-api=env:VAR)"
    return text


def clean(item, keys):
    """An object from the API with string members `keys` (cut to 2000 characters), or None."""
    if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in keys):
        return None
    return {k: item[k][:2000] for k in keys}


# ----- the graph's nodes: (ctx, cfg, state) -> the new state, with "next" set -------------

def clarify(ctx, cfg, state):
    """Asks the client for a topic (none given, or the last one found nothing)."""
    if state["asked"] >= MAX_QUESTIONS:
        raise AgentError("no usable topic after %d questions" % MAX_QUESTIONS)
    text = ("What should I research?" if not state["topic"] else
            "No sources found for %r. What else should I research?" % state["topic"])
    answer = ctx.ask(text, TOPIC_SCHEMA)
    if isinstance(answer, dict):
        answer = answer.get("topic")
    if not isinstance(answer, str) or not answer.strip():
        raise AgentError("the answer must be a topic (a non-empty string)")
    return dict(state, topic=answer.strip()[:200], asked=state["asked"] + 1, next="plan")


def plan(ctx, cfg, state):
    """Splits the topic into searches. (An LLM would write this plan; its reasoning goes in
    the decision.)"""
    topic = state["topic"]
    parts = [p.strip() for p in re.split(SEPARATORS, topic, flags=re.I) if p.strip()]
    queries = []
    for q in [topic] + parts:
        if q.lower() not in [x.lower() for x in queries]:
            queries.append(q)
    queries = queries[:MAX_QUERIES]
    ctx.decision("plan: %d searches for %r: %s" % (len(queries), topic, "; ".join(queries)))
    return dict(state, queries=queries, hits=[], sources=[], next="search")


def search(ctx, cfg, state):
    """One GET /search per planned query; the distinct hits in the order found."""
    hits = []
    for q in state["queries"]:
        query = {"q": q, "limit": cfg["max_sources"]}
        args = {"url": cfg["api"] + "/search?" + urlencode(query), "query": q}
        with ctx.tool_call("web-search", args) as call:
            status, size, body = get_json(cfg, "/search", query)
            results = body.get("results") if isinstance(body, dict) else None
            if not isinstance(results, list):
                raise AgentError("GET /search: %s answered without a results list" % cfg["host"])
            found = [h for h in (clean(r, ["id", "title", "url", "snippet"]) for r in results)
                     if h is not None and ID.fullmatch(h["id"])]
            call.result = {"status": status, "bytes": size, "ids": [h["id"] for h in found]}
        hits += [h for h in found if h["id"] not in [x["id"] for x in hits]]
    if hits:
        chosen = hits[:cfg["max_sources"]]
        ids = ", ".join(h["id"] for h in chosen)
        ctx.decision("%d distinct sources; reading %s" % (len(hits), ids))
        return dict(state, hits=chosen, next="read")
    route = "clarify" if state["asked"] < MAX_QUESTIONS else "synthesize"
    ctx.decision("no sources for %r; %s" % (state["topic"], "asking for another topic"
                                            if route == "clarify" else "reporting that"))
    return dict(state, hits=[], next=route)


def read(ctx, cfg, state):
    """GET /doc/{id} for each chosen hit; keeps only the sentences that matter (small state)."""
    sources = []
    for hit in state["hits"]:
        path = "/doc/" + quote(hit["id"], safe="")
        with ctx.tool_call("fetch-doc", {"url": cfg["api"] + path, "id": hit["id"]}) as call:
            status, size, body = get_json(cfg, path)
            doc = clean(body, ["title", "text"])
            if doc is None:
                raise AgentError("GET /doc: %s answered without a title and text" % cfg["host"])
            call.result = {"status": status, "bytes": size, "title": doc["title"][:200]}
        points = key_sentences(doc["text"], state["topic"]) or [hit["snippet"]]
        sources.append({"id": hit["id"], "title": doc["title"][:200], "url": hit["url"],
                        "points": points})
    return dict(state, sources=sources, next="synthesize")


def synthesize(ctx, cfg, state):
    """The report: an extractive summary of the sources (an LLM would write prose here)."""
    sources, topic = state["sources"], state["topic"]
    ctx.decision("writing the summary of %r from %d sources" % (topic, len(sources)))
    if sources:
        body = " ".join("%s: %s" % (s["title"], " ".join(s["points"])) for s in sources)
        summary = "%s, from %d sources. %s" % (topic, len(sources), body)
    else:
        summary = "No sources found for %s." % topic
    output = {"topic": topic, "summary": summary[:4000], "sources": sources}
    return dict(state, output=output, next=END)


def key_sentences(text, topic, count=2):
    """The `count` sentences sharing most words with the topic, in their original order."""
    wanted = set(re.findall(r"[a-z0-9]{3,}", topic.lower()))
    sentences = [s.strip()[:300] for s in re.split(r"(?<=[.!?])\s+", text[:100000]) if s.strip()]
    score = {i: len(wanted & set(re.findall(r"[a-z0-9]{3,}", s.lower())))
             for i, s in enumerate(sentences)}
    best = sorted((i for i in score if score[i]), key=lambda i: (-score[i], i))[:count]
    return [sentences[i] for i in sorted(best)]


NODES = {"clarify": clarify, "plan": plan, "search": search, "read": read, "synthesize": synthesize}


@agent
def run(ctx: Context, job: object) -> dict:
    cfg = settings(job)
    state = ctx.resumed_state
    if state is None:
        topic = job.get("topic", "")
        if not isinstance(topic, str):
            raise AgentError("topic must be a string")
        topic = topic.strip()[:200]
        state = {"topic": topic, "asked": 0, "next": "plan" if topic else "clarify"}
    elif not isinstance(state, dict) or state.get("next") not in list(NODES) + [END]:
        raise AgentError("cannot resume: the checkpoint is not one this agent wrote")
    else:
        ctx.decision("resuming at the %s step" % state["next"])
    while state["next"] != END:
        state = NODES[state["next"]](ctx, cfg, state)
        ctx.checkpoint(state)  # a resumed run starts at state["next"]
    return state["output"]


if __name__ == "__main__":
    run.main()
