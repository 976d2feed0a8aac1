// `npm test`: makes sure the tools the chosen tests run are on this machine (installing Debian's packages
// when it runs as root, else stopping at once with the command to run), builds the bundles (the end-to-end
// tests run the shipped programs), then runs every test file under test/ with Node's test runner. Arguments
// narrow the files: `npm test -- test/unit`.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import path from "node:path";

/**
 * The programs the tests run, by the test folder that needs them, and where each one comes from. rsync: the
 * rsync copier; shellcheck: the boot scripts' checks; chromium: the HTML report opened in a browser
 * (playwright-core drives Debian's build); moto_server: emulated CloudFormation, EC2 and IAM, and S3 features
 * the Node emulator lacks (Python; on this project's machine image it is preinstalled).
 */
const TOOLS = {
  rsync: { check: "rsync", debian: "rsync" },
  shellcheck: { check: "shellcheck", debian: "shellcheck" },
  chromium: { check: "/usr/bin/chromium", debian: "chromium" },
  moto: { check: "moto_server", pip: "moto[server]==5.2.1" },
};
const NEEDS = {
  "test/infra": ["shellcheck"],
  "test/e2e": ["rsync", "chromium", "moto"],
  "test/deploy": ["moto"],
};

const roots = process.argv.slice(2).length ? process.argv.slice(2) : ["test"];
const files = roots.flatMap((r) => (statSync(r).isDirectory() ? walk(r) : [r])).sort();

ensureTools(files);

const build = spawnSync(process.execPath, ["scripts/build.mjs"], { stdio: "inherit" });
if (build.status !== 0) process.exit(build.status ?? 1);

const env = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" };
// The programs take credentials from the SDK's default chain, endpoint or not: tests present keys of their
// own to their emulators, never the keys of whoever runs them.
env.AWS_ACCESS_KEY_ID = "test";
env.AWS_SECRET_ACCESS_KEY = "test";
for (const name of ["AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"]) delete env[name];
const run = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-reporter=spec", ...files], {
  stdio: "inherit",
  env,
});
process.exit(run.status ?? 1);

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) return walk(p);
    return p.endsWith(".test.ts") ? [p] : [];
  });
}

/** Installs the missing Debian packages when root; otherwise, or for what Debian lacks, stops with the command. */
function ensureTools(chosen) {
  const wanted = new Set();
  for (const file of chosen) {
    const dir = Object.keys(NEEDS).find((d) => path.normalize(file).startsWith(`${d}${path.sep}`));
    for (const tool of NEEDS[dir] ?? []) wanted.add(tool);
  }
  let missing = [...wanted].filter((t) => !have(TOOLS[t].check));
  const debian = missing.filter((t) => TOOLS[t].debian).map((t) => TOOLS[t].debian);
  if (debian.length > 0 && process.getuid?.() === 0 && have("apt-get")) {
    console.error(`npm test: installing ${debian.join(", ")} from Debian's packages`);
    const apt = (args) =>
      spawnSync("apt-get", args, {
        stdio: ["ignore", "ignore", "inherit"],
        env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
      });
    // Waits for another apt or dpkg to finish instead of failing on its lock.
    const lock = ["-o", "DPkg::Lock::Timeout=600"];
    const updated = apt([...lock, "update", "-qq"]);
    const installed = updated.status === 0 ? apt([...lock, "install", "-y", "-qq", ...debian]) : updated;
    if (installed.status !== 0) {
      console.error(`npm test: apt-get could not install ${debian.join(" ")} (exit ${installed.status})`);
      process.exit(2);
    }
    missing = missing.filter((t) => !have(TOOLS[t].check));
  }
  if (missing.length === 0) return;
  const apt = missing.filter((t) => TOOLS[t].debian).map((t) => TOOLS[t].debian);
  const pip = missing.filter((t) => TOOLS[t].pip).map((t) => TOOLS[t].pip);
  const commands = [
    ...(apt.length ? [`sudo apt-get update && sudo apt-get install -y ${apt.join(" ")}`] : []),
    ...(pip.length ? [`python3 -m pip install ${pip.map((p) => `'${p}'`).join(" ")}`] : []),
  ];
  console.error(
    `npm test: the tests need ${missing.map((t) => TOOLS[t].check).join(", ")}, which this machine lacks. Run:\n  ${commands.join(" && ")}\nthen npm test again.`,
  );
  process.exit(2);
}

function have(command) {
  if (command.startsWith("/")) return spawnSync("test", ["-x", command]).status === 0;
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}
