"""A small Iceberg REST catalog for tests: pyiceberg's SQL catalog (SQLite)
behind the REST endpoints a writer needs (config, namespaces, create, load and
commit a table). Commits are applied by pyiceberg with their requirements
checked, so a stale writer gets 409 CommitFailedException as from any REST
catalog.

  iceberg_rest.py <port> <state-dir> [s3-endpoint]
"""
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import CommitFailedException, NamespaceAlreadyExistsError, NoSuchNamespaceError, NoSuchTableError, TableAlreadyExistsError
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import CommitTableRequest

port, state = int(sys.argv[1]), sys.argv[2]
os.makedirs(state, exist_ok=True)
props = {"uri": f"sqlite:///{state}/catalog.db", "warehouse": f"file://{state}/warehouse"}
if len(sys.argv) > 3:
    props.update({"s3.endpoint": sys.argv[3], "s3.access-key-id": "test-key", "s3.secret-access-key": "test-secret", "s3.region": "us-east-1"})
catalog = SqlCatalog("rest", **props)
lock = threading.Lock()


def table_result(t):
    return {"metadata-location": t.metadata_location, "metadata": json.loads(t.metadata.model_dump_json(by_alias=True, exclude_none=True)), "config": {}}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, code, kind, message):
        self.reply(code, {"error": {"message": message, "type": kind, "code": code}})

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"{}")

    def parts(self):
        return [unquote(p) for p in self.path.split("?")[0].strip("/").split("/")]

    def do_GET(self):
        p = self.parts()
        try:
            with lock:
                if p == ["v1", "config"]:
                    return self.reply(200, {"defaults": {}, "overrides": {}})
                if len(p) == 3 and p[1] == "namespaces":
                    catalog.load_namespace_properties(p[2])
                    return self.reply(200, {"namespace": [p[2]], "properties": {}})
                if len(p) == 5 and p[1] == "namespaces" and p[3] == "tables":
                    return self.reply(200, table_result(catalog.load_table((p[2], p[4]))))
        except NoSuchNamespaceError as e:
            return self.error(404, "NoSuchNamespaceException", str(e))
        except NoSuchTableError as e:
            return self.error(404, "NoSuchTableException", str(e))
        self.error(404, "NotFound", self.path)

    def do_POST(self):
        p = self.parts()
        b = self.body()
        try:
            with lock:
                if p == ["v1", "namespaces"]:
                    catalog.create_namespace(tuple(b["namespace"]), b.get("properties", {}))
                    return self.reply(200, {"namespace": b["namespace"], "properties": {}})
                if len(p) == 4 and p[1] == "namespaces" and p[3] == "tables":
                    spec = PartitionSpec.model_validate(b["partition-spec"]) if b.get("partition-spec") else PartitionSpec()
                    t = catalog.create_table(
                        (p[2], b["name"]), schema=Schema.model_validate(b["schema"]), location=b.get("location"), partition_spec=spec, properties=b.get("properties", {})
                    )
                    return self.reply(200, table_result(t))
                if len(p) == 5 and p[1] == "namespaces" and p[3] == "tables":
                    req = CommitTableRequest.model_validate(b)
                    t = catalog.load_table((p[2], p[4]))
                    r = catalog.commit_table(t, req.requirements, req.updates)
                    return self.reply(200, {"metadata-location": r.metadata_location, "metadata": json.loads(r.metadata.model_dump_json(by_alias=True, exclude_none=True))})
        except CommitFailedException as e:
            return self.error(409, "CommitFailedException", str(e))
        except (NamespaceAlreadyExistsError, TableAlreadyExistsError) as e:
            return self.error(409, "AlreadyExistsException", str(e))
        except NoSuchNamespaceError as e:
            return self.error(404, "NoSuchNamespaceException", str(e))
        except NoSuchTableError as e:
            return self.error(404, "NoSuchTableException", str(e))
        except Exception as e:  # a bad request: say what pyiceberg said
            return self.error(400, "BadRequestException", f"{type(e).__name__}: {e}")
        self.error(404, "NotFound", self.path)


ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
