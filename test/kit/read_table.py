"""Reads a Delta or Iceberg table with readers that share no code with Runnel and
writes what each read as JSON lines (timestamps as microseconds), so the tests
compare them with a reference in DuckDB.

  read_table.py delta <path or s3://...> <out-prefix> [endpoint]
  read_table.py iceberg <catalog-uri | -> <namespace.table | metadata.json> <out-prefix> [endpoint]

Readers: delta-rs (the `deltalake` package) and DuckDB's delta extension for
Delta; pyiceberg and DuckDB's iceberg extension for Iceberg. DuckDB's extension
repository is not reachable from here, so the extensions come from PyPI
(duckdb-extension-* wheels, built for DuckDB 1.5.5, which the venv pins).
Prints a JSON summary on stdout.
"""
import importlib
import json
import os
import sys

import pyarrow as pa


def duck(extensions, endpoint):
    import duckdb

    c = duckdb.connect()
    for n in extensions:
        m = importlib.import_module("duckdb_extension_" + n)
        c.execute(f"LOAD '{os.path.dirname(m.__file__)}/extensions/v{duckdb.__version__}/{n}.duckdb_extension'")
    if endpoint:
        host = endpoint.split("://", 1)[1]
        c.execute(
            f"CREATE SECRET s3 (TYPE s3, KEY_ID 'test-key', SECRET 'test-secret', REGION 'us-east-1', ENDPOINT '{host}', URL_STYLE 'path', USE_SSL false)"
        )
    return c


def write_arrow(t, out):
    cols = {}
    for name in t.column_names:
        col = t.column(name)
        if pa.types.is_timestamp(col.type):
            col = col.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
        cols[name] = col
    t = pa.table(cols)
    with open(out, "w") as fh:
        for row in t.to_pylist():
            fh.write(json.dumps(row) + "\n")
    return t.num_rows


def write_duck(c, sql, out):
    rel = c.sql(sql)
    return write_arrow(rel.fetch_arrow_table() if hasattr(rel, "fetch_arrow_table") else rel.arrow(), out)


def delta(path, prefix, endpoint):
    from deltalake import DeltaTable

    opts = {}
    if endpoint:
        opts = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "test-key",
            "AWS_SECRET_ACCESS_KEY": "test-secret",
            "AWS_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true",
            "AWS_S3_ALLOW_UNSAFE_RENAME": "true",
        }
    t = DeltaTable(path, storage_options=opts)
    files = t.file_uris()
    summary = {"version": t.version(), "files": len(files), "distinct_files": len(set(files))}
    summary["deltalake_rows"] = write_arrow(t.to_pyarrow_table(), prefix + "-deltalake.jsonl")
    c = duck(["delta"] + (["httpfs"] if endpoint else []), endpoint)
    summary["duckdb_rows"] = write_duck(c, f"SELECT * FROM delta_scan('{path}')", prefix + "-duckdb.jsonl")
    return summary


def iceberg(uri, name, prefix, endpoint):
    import pyarrow.parquet as pq

    props = {}
    if endpoint:
        props.update({"s3.endpoint": endpoint, "s3.access-key-id": "test-key", "s3.secret-access-key": "test-secret", "s3.region": "us-east-1"})
    if uri == "-":
        from pyiceberg.table import StaticTable

        t = StaticTable.from_metadata(name, properties=props)
    else:
        from pyiceberg.catalog import load_catalog

        t = load_catalog("rest", **{"type": "rest", "uri": uri, **props}).load_table(name)
    scan = t.scan()
    tasks = list(scan.plan_files())
    files = [task.file.file_path for task in tasks]
    summary = {"snapshots": len(t.metadata.snapshots), "files": len(files), "distinct_files": len(set(files))}
    with open(prefix + "-files.json", "w") as fh:
        json.dump(files, fh)
    # Each file's partition tuple against pyiceberg's own transforms of every row's source value.
    checked = mismatches = 0
    schema, spec = t.schema(), t.spec()
    for task in tasks:
        with t.io.new_input(task.file.file_path).open() as fh:
            data = pq.read_table(fh)
        for i, pf in enumerate(spec.fields):
            src = schema.find_field(pf.source_id)
            fn = pf.transform.transform(src.field_type)
            col = data.column(src.name)
            if pa.types.is_timestamp(col.type):
                col = col.cast(pa.int64())
            # A spread sample of each file: pyiceberg's transforms are per value in Python.
            values = col.to_pylist()
            for v in values[:: max(1, len(values) // 500)]:
                checked += 1
                if fn(v) != task.file.partition[i]:
                    mismatches += 1
    summary["partition_checked"] = checked
    summary["partition_mismatches"] = mismatches
    summary["pyiceberg_rows"] = write_arrow(scan.to_arrow(), prefix + "-pyiceberg.jsonl")
    c = duck(["avro", "iceberg"] + (["httpfs"] if endpoint else []), endpoint)
    summary["duckdb_rows"] = write_duck(c, f"SELECT * FROM iceberg_scan('{t.metadata_location}')", prefix + "-duckdb.jsonl")
    summary["metadata_location"] = t.metadata_location
    return summary


if __name__ == "__main__":
    kind = sys.argv[1]
    if kind == "delta":
        out = delta(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
    else:
        out = iceberg(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] if len(sys.argv) > 5 else None)
    print(json.dumps(out))
    sys.stdout.flush()
    # delta-rs's runtime can abort while the interpreter shuts down; everything is written by now.
    os._exit(0)
