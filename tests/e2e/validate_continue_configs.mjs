// Validates Continue configs with Continue's own schemas (zod):
//   node validate_continue_configs.mjs NODE_PREFIX config.yaml config.json
// NODE_PREFIX is the folder whose node_modules holds @continuedev/config-yaml and @continuedev/config-types.
// Prints one JSON object {yaml: {...}, json: {...}}; exits 1 when either config is invalid.
// Zod drops keys it does not know, so a misspelt key would pass a plain parse: keys that the parse
// dropped are reported as errors too.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [prefix, yamlPath, jsonPath] = process.argv.slice(2);
const require = createRequire(join(prefix, "package.json"));
const load = async (name) => import(pathToFileURL(require.resolve(name)).href);

function droppedKeys(original, parsed, path = "") {
  const dropped = [];
  if (original && typeof original === "object" && !Array.isArray(original)) {
    for (const key of Object.keys(original)) {
      if (parsed === null || typeof parsed !== "object" || !(key in parsed)) {
        dropped.push(`${path}${key}`);
      } else {
        dropped.push(...droppedKeys(original[key], parsed[key], `${path}${key}.`));
      }
    }
  } else if (Array.isArray(original) && Array.isArray(parsed)) {
    original.forEach((item, i) => dropped.push(...droppedKeys(item, parsed[i], `${path}${i}.`)));
  }
  return dropped;
}

const result = {};
const yamlModule = await load("@continuedev/config-yaml");
const YAML = await load("yaml").catch(() => null);
try {
  const text = readFileSync(yamlPath, "utf8");
  const parsed = yamlModule.parseConfigYaml(text);
  const problems = yamlModule.validateConfigYaml(parsed);
  const raw = YAML ? (YAML.default ?? YAML).parse(text) : parsed;
  const dropped = droppedKeys(raw, parsed);
  result.yaml = {
    ok: dropped.length === 0 && !problems.some((p) => p.fatal),
    dropped,
    problems,
    models: parsed.models,
  };
} catch (error) {
  result.yaml = { ok: false, error: String(error && error.message ? error.message : error) };
}

const typesModule = await load("@continuedev/config-types");
try {
  const raw = JSON.parse(readFileSync(jsonPath, "utf8"));
  // configJsonSchema is also the team control plane's shape and requires `analytics` and `devData`;
  // Continue itself reads user configs without them (and a user config must not turn analytics on),
  // so those two, and only those, are optional here.
  const schema = typesModule.configJsonSchema.partial({ analytics: true, devData: true });
  const parsed = schema.safeParse(raw);
  if (parsed.success) {
    const dropped = droppedKeys(raw, parsed.data);
    result.json = { ok: dropped.length === 0, dropped, data: parsed.data };
  } else {
    result.json = { ok: false, error: JSON.stringify(parsed.error.issues) };
  }
} catch (error) {
  result.json = { ok: false, error: String(error && error.message ? error.message : error) };
}

console.log(JSON.stringify(result));
process.exit(result.yaml.ok && result.json.ok ? 0 : 1);
