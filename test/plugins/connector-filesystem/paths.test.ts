/** Locations, strftime partitions and file names of the filesystem sink. */
import { describe, expect, test } from "bun:test";
import { compileTimePattern, FileNamer, parseLocation, partitionValue } from "../../../plugins/connector-filesystem/paths.ts";

describe("path option", () => {
  test("local forms", () => {
    expect(parseLocation("/data/out")).toEqual({ kind: "local", dir: "/data/out" });
    expect(parseLocation("file:///data/out")).toEqual({ kind: "local", dir: "/data/out" });
  });

  test("S3 forms: s3://, virtual-host and path-style AWS URLs, s3:: with a custom endpoint", () => {
    expect(parseLocation("s3://runnel-demo/bids")).toEqual({ kind: "s3", bucket: "runnel-demo", prefix: "bids" });
    expect(parseLocation("s3://runnel-demo")).toEqual({ kind: "s3", bucket: "runnel-demo", prefix: "" });
    expect(parseLocation("s3://b-1/a/b/")).toEqual({ kind: "s3", bucket: "b-1", prefix: "a/b" });
    expect(parseLocation("https://my-bucket.s3.us-west-2.amazonaws.com/out/x")).toEqual({ kind: "s3", bucket: "my-bucket", prefix: "out/x", region: "us-west-2" });
    expect(parseLocation("https://s3.eu-west-1.amazonaws.com/my-bucket/out")).toEqual({ kind: "s3", bucket: "my-bucket", prefix: "out", region: "eu-west-1" });
    expect(parseLocation("s3::http://127.0.0.1:9000/my-bucket/out")).toEqual({ kind: "s3", bucket: "my-bucket", prefix: "out", endpoint: "http://127.0.0.1:9000" });
  });

  test("bad forms name the option", () => {
    expect(() => parseLocation("s3://Bad_Bucket/x")).toThrow("option 'path': 'Bad_Bucket' in 's3://Bad_Bucket/x' is not a valid S3 bucket name");
    expect(() => parseLocation("gs://bucket/x")).toThrow("option 'path': scheme of 'gs://bucket/x' is not supported");
    expect(() => parseLocation(" ")).toThrow("option 'path' is empty");
  });
});

describe("partitioning.time_pattern", () => {
  const t = Date.UTC(2024, 2, 5, 7, 8, 9) * 1000 + 123; // µs
  test("strftime directives over event time, in UTC", () => {
    expect(compileTimePattern("year=%Y/month=%m/day=%d/hour=%H")(t)).toBe("year=2024/month=03/day=05/hour=07");
    expect(compileTimePattern("%F/%H%M%S/%y-%j/100%%")(t)).toBe("2024-03-05/070809/24-065/100%");
  });
  test("an unknown directive names the option", () => {
    expect(() => compileTimePattern("%Y/%q")).toThrow("option 'partitioning.time_pattern': unknown directive '%q'");
  });
});

describe("partition values and file names", () => {
  test("values are one safe path segment", () => {
    expect(partitionValue("a/b")).toBe("a%2Fb");
    expect(partitionValue(null)).toBe("__NULL__");
    expect(partitionValue(42)).toBe("42");
  });

  test("names carry the run and the subtask, so an unfinished file's owner is known", () => {
    const namer = new FileNamer("bids-", "-v1", "parquet", 3);
    const a = namer.next();
    const b = namer.next();
    expect(a).toMatch(/^bids-[0-9a-z]{13}-3-0-v1\.parquet$/);
    expect(b).toMatch(/^bids-[0-9a-z]{13}-3-1-v1\.parquet$/);
    expect(namer.ownerOf(a)).toBe(3);
    expect(new FileNamer("bids-", "-v1", "parquet", 0).ownerOf(b)).toBe(3);
    expect(namer.ownerOf("other.parquet")).toBeNull();
    expect(namer.ownerOf(a.replace(".parquet", ".json"))).toBeNull();
  });
});
