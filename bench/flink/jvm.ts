/** Builds the Flink side (mvn, once per change) and gives the java command line that runs it. */
import { existsSync, readFileSync, statSync, readdirSync } from "node:fs";
import { join } from "node:path";

const DIR = import.meta.dir;
const CLASSPATH = join(DIR, "target", "classpath.txt");

/** Newest modification time under a folder (ms). */
function newest(path: string): number {
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  return Math.max(s.mtimeMs, ...readdirSync(path).map((f) => newest(join(path, f))));
}

/** Compiles when the sources or the pom are newer than the classes. */
export async function build(): Promise<void> {
  const classes = join(DIR, "target", "classes", "runnel");
  const stale = !existsSync(classes) || !existsSync(CLASSPATH) || Math.max(newest(join(DIR, "src")), newest(join(DIR, "pom.xml"))) > newest(classes);
  if (!stale) return;
  const mvn = Bun.spawn(["mvn", "-q", "-B", "compile", "dependency:build-classpath", `-Dmdep.outputFile=${CLASSPATH}`], { cwd: DIR, stdout: "inherit", stderr: "inherit" });
  if ((await mvn.exited) !== 0) throw new Error("mvn failed to build bench/flink (JDK 17 and Maven are needed)");
}

/** Java 17 closes the JDK internals Flink reflects into (its own launcher passes the same flags). */
const OPENS = [
  "java.base/java.lang", "java.base/java.lang.reflect", "java.base/java.io", "java.base/java.net", "java.base/java.nio",
  "java.base/java.text", "java.base/java.time", "java.base/java.util", "java.base/java.util.concurrent",
  "java.base/java.util.concurrent.atomic", "java.base/java.util.concurrent.locks", "java.base/sun.nio.ch",
].flatMap((m) => [`--add-opens=${m}=ALL-UNNAMED`]);
const EXPORTS = ["java.base/sun.net.util", "java.rmi/sun.rmi.registry", "java.security.jgss/sun.security.krb5"].map((m) => `--add-exports=${m}=ALL-UNNAMED`);

export async function javaCommand(args: string[], heap = "4g"): Promise<string[]> {
  await build();
  const cp = `${join(DIR, "target", "classes")}:${readFileSync(CLASSPATH, "utf8").trim()}`;
  return ["java", `-Xms${heap}`, `-Xmx${heap}`, ...OPENS, ...EXPORTS, "-cp", cp, "runnel.nexmark.Main", ...args];
}
