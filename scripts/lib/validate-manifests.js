#!/usr/bin/env node
// Validates Kubernetes manifests offline, for scripts/deploy-checks.sh.
//
//   node validate-manifests.js --modules DIR FILE...
//
// DIR is a node_modules folder holding kubernetes-models (4.5.x), @kubernetes-models/
// cert-manager and @kubernetes-models/prometheus-operator (4.4.x), js-yaml and typescript
// (see scripts/lib/validators/package.json). Every YAML document of every FILE is checked
// twice:
//   1. schema: the model class matching apiVersion/kind validates it (types, enums,
//      required fields). kubernetes-models' validators ignore fields they do not know.
//   2. unknown fields: each document becomes a typed TypeScript object literal
//      (`const m: IDeployment = {...}`) and the TypeScript compiler's excess-property check
//      reports every key the API does not define, at any depth ("restartPolicy" misspelt
//      in a container, a probe field at the wrong level, ...).
// Kustomize's own files (kustomize.config.k8s.io) are skipped: deploy-checks.sh renders them
// with `kubectl kustomize` and validates the output instead.
// Prints one line per problem and a summary; exits 1 when any document fails, 2 on usage.
'use strict';

const fs = require('fs');
const path = require('path');

function usage(message) {
  process.stderr.write(`validate-manifests: ${message}\n` +
    'usage: node validate-manifests.js --modules NODE_MODULES_DIR FILE...\n');
  process.exit(2);
}

const args = process.argv.slice(2);
let modulesDir = '';
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--modules') {
    modulesDir = args[++i] || '';
  } else {
    files.push(args[i]);
  }
}
if (!modulesDir) usage('--modules is required');
if (files.length === 0) usage('no files given');
modulesDir = path.resolve(modulesDir);

const need = (name) => require(path.join(modulesDir, name));
const yaml = need('js-yaml');
const ts = need('typescript');

// Which package provides the model for an API group. Core groups live in kubernetes-models.
const CRD_PACKAGES = {
  'cert-manager.io': '@kubernetes-models/cert-manager',
  'acme.cert-manager.io': '@kubernetes-models/cert-manager',
  'monitoring.coreos.com': '@kubernetes-models/prometheus-operator',
};
const SKIPPED_GROUPS = new Set(['kustomize.config.k8s.io']);

// Returns {modulePath, typeName} for a document, or {error}.
function modelFor(doc) {
  const apiVersion = doc.apiVersion;
  const kind = doc.kind;
  if (typeof apiVersion !== 'string' || typeof kind !== 'string' || !/^[A-Z][A-Za-z0-9]*$/.test(kind)) {
    return {error: 'apiVersion and kind must be set (strings)'};
  }
  const slash = apiVersion.indexOf('/');
  const group = slash < 0 ? '' : apiVersion.slice(0, slash);
  const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
  if (SKIPPED_GROUPS.has(group)) return {skip: true};
  const pkg = CRD_PACKAGES[group] || 'kubernetes-models';
  const sub = group === '' ? version : `${group}/${version}`;
  const modulePath = `${pkg}/${sub}/${kind}`;
  try {
    require.resolve(path.join(modulesDir, modulePath));
  } catch (e) {
    return {error: `no model for ${apiVersion} ${kind} (looked for ${modulePath})`};
  }
  return {modulePath, typeName: `I${kind}`, kind};
}

function describe(doc) {
  const name = doc && doc.metadata && doc.metadata.name;
  return `${doc && doc.kind}/${name || '?'}`;
}

function formatAjvErrors(errors) {
  return (errors || []).map((e) => {
    const where = e.instancePath || '/';
    const extra = e.params && e.params.missingProperty ? ` (${e.params.missingProperty})` :
      e.params && e.params.allowedValues ? ` (${e.params.allowedValues.join(', ')})` : '';
    return `${where}: ${e.message || e.keyword}${extra}`;
  });
}

const problems = [];
let documents = 0;
let skipped = 0;
const typed = [];  // {label, modulePath, typeName, doc}

for (const file of files) {
  let docs;
  try {
    docs = yaml.loadAll(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    problems.push(`${file}: YAML: ${e.message.split('\n')[0]}`);
    continue;
  }
  docs.forEach((doc, index) => {
    if (doc === null || doc === undefined) return;
    const label = `${file}#${index + 1} ${describe(doc)}`;
    if (typeof doc !== 'object' || Array.isArray(doc)) {
      problems.push(`${label}: not a mapping`);
      return;
    }
    const model = modelFor(doc);
    if (model.skip) {
      skipped++;
      return;
    }
    documents++;
    if (model.error) {
      problems.push(`${label}: ${model.error}`);
      return;
    }
    const mod = require(path.join(modulesDir, model.modulePath));
    const Model = mod[model.kind];
    try {
      new Model(doc).validate();
    } catch (e) {
      const details = formatAjvErrors(e.errors);
      if (details.length === 0) details.push(e.message);
      for (const d of details) problems.push(`${label}: schema: ${d}`);
    }
    typed.push({label, modulePath: model.modulePath, typeName: model.typeName, doc});
  });
}

// Unknown fields: one TypeScript program over all documents. The generated files sit in a
// folder next to node_modules so that module resolution finds the models' .d.ts files.
if (typed.length > 0) {
  const workDir = fs.mkdtempSync(path.join(path.dirname(modulesDir), '.manifest-check-'));
  try {
    const sources = typed.map((t, i) => {
      const fileName = path.join(workDir, `m${i}.ts`);
      const body = JSON.stringify(t.doc, null, 2);
      const text = `import type { ${t.typeName} } from ${JSON.stringify(t.modulePath)};\n` +
        `export const m: ${t.typeName} = ${body};\n`;
      fs.writeFileSync(fileName, text);
      return {fileName, text, entry: t};
    });
    const program = ts.createProgram(sources.map((s) => s.fileName), {
      noEmit: true,
      strict: true,
      skipLibCheck: true,
      target: ts.ScriptTarget.ES2020,
      module: ts.ModuleKind.CommonJS,
      moduleResolution: ts.ModuleResolutionKind.Node10,
      types: [],
    });
    const byFile = new Map(sources.map((s) => [path.resolve(s.fileName), s]));
    // Type errors (wrong type, bad enum value). Excess-property errors are left to the walk
    // below: the compiler reports only the first unknown key of each object literal.
    const EXCESS_PROPERTY_CODES = new Set([2353, 2561]);
    for (const diag of ts.getPreEmitDiagnostics(program)) {
      if (EXCESS_PROPERTY_CODES.has(diag.code)) continue;
      const message = ts.flattenDiagnosticMessageText(diag.messageText, ' ');
      const src = diag.file && byFile.get(path.resolve(diag.file.fileName));
      if (!src) {
        problems.push(`typescript: ${message}`);
        continue;
      }
      const {line} = diag.file.getLineAndCharacterOfPosition(diag.start || 0);
      problems.push(`${src.entry.label}: type: ${pathAtLine(src.text, line)}: ${message}`);
    }
    // Unknown fields: walk each document beside its declared type, key by key.
    const checker = program.getTypeChecker();
    for (const src of sources) {
      const sf = program.getSourceFile(src.fileName);
      const stmt = sf.statements.find((st) => ts.isVariableStatement(st));
      const decl = stmt.declarationList.declarations[0];
      const rootType = checker.getTypeFromTypeNode(decl.type);
      walkUnknown(checker, decl, src.entry.doc, rootType, '', (where, msg) =>
        problems.push(`${src.entry.label}: unknown field: ${where || '/'}: ${msg}`));
    }
  } finally {
    fs.rmSync(workDir, {recursive: true, force: true});
  }
}

// Reports every key of `value` that its TypeScript type does not declare, at any depth.
// Types with a string index signature (labels, annotations, ConfigMap data) accept any key;
// `any` and primitive types end the walk.
function walkUnknown(checker, node, value, type, where, report) {
  type = checker.getNonNullableType(type);
  if (type.isUnion()) {
    const objects = type.types.filter((t) => t.getFlags() & ts.TypeFlags.Object);
    if (objects.length !== 1) return;  // primitives only (IntOrString...) or ambiguous
    type = objects[0];
  }
  if (Array.isArray(value)) {
    if (!checker.isArrayType(type)) return;
    const element = checker.getTypeArguments(type)[0];
    value.forEach((v, i) => walkUnknown(checker, node, v, element, `${where}/${i}`, report));
    return;
  }
  if (value === null || typeof value !== 'object') return;
  if (!(type.getFlags() & ts.TypeFlags.Object)) return;
  const index = checker.getIndexTypeOfType(type, ts.IndexKind.String);
  for (const [key, v] of Object.entries(value)) {
    const prop = type.getProperty(key);
    if (prop) {
      walkUnknown(checker, node, v, checker.getTypeOfSymbolAtLocation(prop, node), `${where}/${key}`, report);
    } else if (index) {
      walkUnknown(checker, node, v, index, `${where}/${key}`, report);
    } else {
      const known = type.getProperties().map((p) => p.getName());
      const close = known.filter((k) => k.toLowerCase() === key.toLowerCase() ||
        (Math.abs(k.length - key.length) <= 2 && (k.startsWith(key.slice(0, 4)))));
      report(`${where}/${key}`, `not a field of ${checker.typeToString(type)}` +
        (close.length ? ` (did you mean ${close.join(', ')}?)` : ''));
    }
  }
}

// The JSON path of the key on `line` of the generated source (JSON.stringify with 2-space
// indentation, one key per line), so that a problem points into the manifest.
function pathAtLine(text, line) {
  const lines = text.split('\n');
  const stack = [];
  for (let i = 1; i <= line && i < lines.length; i++) {
    const raw = lines[i];
    const depth = (raw.length - raw.trimStart().length) / 2;
    const m = /^\s*"((?:[^"\\]|\\.)*)":/.exec(raw);
    stack.length = Math.max(0, depth - 1);
    if (m) stack[depth - 1] = m[1];
    else if (/^\s*[{[]/.test(raw) || /^\s*("|\d|true|false|null)/.test(raw)) stack[depth - 1] = '[]';
  }
  return '/' + stack.filter((s) => s !== undefined).join('/');
}

for (const p of problems) process.stdout.write(`${p}\n`);
process.stdout.write(`validate-manifests: ${documents} documents in ${files.length} files, ` +
  `${skipped} kustomize files skipped, ${problems.length} problems\n`);
process.exit(problems.length > 0 ? 1 : 0);
