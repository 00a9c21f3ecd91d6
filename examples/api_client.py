#!/usr/bin/env python3
"""A HubSync local-API client an app can copy: Python's standard library only.

It finds the running agent of a data directory (agent.json and api.token there), writes a
memory, and follows the change feed (server-sent events).

    python3 api_client.py --data ~/.local/share/hubsync write-memory m1 "Likes green tea"
    python3 api_client.py --data ~/.local/share/hubsync follow --count 1
"""
import argparse
import http.client
import json
import os
import sys
import time


class Agent:
    """The local API of the agent running on one data directory."""

    def __init__(self, data_dir):
        try:
            with open(os.path.join(data_dir, "agent.json")) as f:
                state = json.load(f)
            with open(os.path.join(data_dir, "api.token")) as f:
                self.token = f.read().strip()
        except FileNotFoundError:
            sys.exit(f"no agent runs on {data_dir}: start it with `hubsync run --data {data_dir}`")
        self.host, port = state["api"].rsplit(":", 1)
        self.port = int(port)

    def request(self, method, path, body=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        headers = {"Authorization": f"Bearer {self.token}"}
        payload = None
        if body is not None:
            payload = json.dumps(body)
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        data = json.loads(response.read() or b"null")
        conn.close()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: HTTP {response.status}: {data.get('error') if data else ''}")
        return data

    def write_memory(self, memory_id, text, tags=()):
        return self.request("PATCH", f"/v1/records/memories/{memory_id}", {"text": text, "tags": list(tags)})

    def follow(self, since=None):
        """Yields each change as a dict: {"sequence", "origin", "record"}."""
        conn = http.client.HTTPConnection(self.host, self.port)
        path = "/v1/changes" + (f"?since={since}" if since is not None else "")
        conn.request("GET", path, headers={"Authorization": f"Bearer {self.token}"})
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: HTTP {response.status}")
        event, data = None, []
        while True:
            line = response.readline()
            if not line:
                return
            line = line.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif line == "" and data:
                if event == "change":
                    yield json.loads("\n".join(data))
                event, data = None, []


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("HUBSYNC_DATA", os.path.expanduser("~/.local/share/hubsync")))
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write-memory", help="write a memory through the agent")
    w.add_argument("id")
    w.add_argument("text")
    w.add_argument("--tag", action="append", default=[])
    f = sub.add_parser("follow", help="print each change as one JSON line")
    f.add_argument("--since", type=int, help="first replay the changes after this sequence")
    f.add_argument("--count", type=int, help="stop after this many changes")
    f.add_argument("--until-id", help="stop at the first change of the record with this ID")
    args = parser.parse_args()

    agent = Agent(args.data)
    if args.command == "write-memory":
        record = agent.write_memory(args.id, args.text, args.tag)
        print(json.dumps(record))
        return
    seen = 0
    for change in agent.follow(args.since):
        change["received_at"] = time.time()
        print(json.dumps(change), flush=True)
        seen += 1
        if args.count and seen >= args.count:
            return
        if args.until_id and change["record"]["id"] == args.until_id:
            return


if __name__ == "__main__":
    main()
