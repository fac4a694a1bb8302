#!/usr/bin/env node
// Checks the conventions our Kubernetes manifests promise, for scripts/deploy-checks.sh.
//
//   node check-pod-policy.js --modules NODE_MODULES_DIR FILE...
//
// For every workload (Deployment, StatefulSet, DaemonSet, Job, Pod) in the files:
//   - Restricted Pod Security: runAsNonRoot (pod or container), allowPrivilegeEscalation
//     false, capabilities.drop ALL, seccompProfile RuntimeDefault (pod or container),
//     readOnlyRootFilesystem, resources set, automountServiceAccountToken false, no
//     container port below 1024;
//   - the apm-tls-proxy sidecar (a container using the apm-tls-proxy image): native
//     (initContainers + restartPolicy Always) or classic; numeric runAsUser; startupProbe
//     and livenessProbe on /healthz and readinessProbe on /readyz, all on the admin port
//     (never on the upstream, never tcpSocket on the TLS port); its TLS Secret mounted as a
//     directory (no subPath) with mode 0440 and a pod fsGroup;
//   - an app container next to the sidecar has a preStop hook, and
//     terminationGracePeriodSeconds is set;
// and for every Service: it never exposes the upstream port 8201 or the admin port.
// Helm test pods (helm.sh/hook: test) are workloads too. Exits 1 on any finding.
'use strict';

const fs = require('fs');
const path = require('path');

const args = process.argv.slice(2);
let modulesDir = '';
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--modules') modulesDir = args[++i] || '';
  else files.push(args[i]);
}
if (!modulesDir || files.length === 0) {
  process.stderr.write('usage: node check-pod-policy.js --modules NODE_MODULES_DIR FILE...\n');
  process.exit(2);
}
const yaml = require(path.join(path.resolve(modulesDir), 'js-yaml'));

const UPSTREAM_PORT = 8201;
const ADMIN_PORT_NAMES = new Set(['admin']);
const problems = [];
let workloads = 0;
let sidecars = 0;
let services = 0;

function podSpecOf(doc) {
  switch (doc.kind) {
    case 'Pod':
      return doc.spec;
    case 'Deployment':
    case 'StatefulSet':
    case 'DaemonSet':
    case 'ReplicaSet':
    case 'Job':
      return doc.spec && doc.spec.template && doc.spec.template.spec;
    case 'CronJob':
      return doc.spec && doc.spec.jobTemplate && doc.spec.jobTemplate.spec &&
        doc.spec.jobTemplate.spec.template && doc.spec.jobTemplate.spec.template.spec;
    default:
      return undefined;
  }
}

const isProxy = (c) => typeof c.image === 'string' && /(^|\/)apm-tls-proxy(:|@|$)/.test(c.image);

function checkProbe(report, c, field, wantPath) {
  const probe = c[field];
  if (!probe) return report(`${field} missing`);
  if (probe.tcpSocket) return report(`${field} uses tcpSocket (each probe is a failed TLS handshake)`);
  if (probe.exec) return report(`${field} uses exec; probe the admin endpoint over HTTP`);
  const get = probe.httpGet;
  if (!get) return report(`${field} must be an httpGet probe`);
  if (get.path !== wantPath) report(`${field} path is ${get.path}, want ${wantPath}`);
  const adminNumbers = new Set((c.ports || []).filter((p) => ADMIN_PORT_NAMES.has(p.name)).map((p) => p.containerPort));
  const port = get.port;
  const ok = typeof port === 'string' ? ADMIN_PORT_NAMES.has(port) : adminNumbers.has(port);
  if (!ok) report(`${field} must target the admin port (got ${port})`);
  if (get.scheme && get.scheme !== 'HTTP') report(`${field} scheme must be HTTP (admin is plain HTTP)`);
}

function checkWorkload(label, doc, spec) {
  workloads++;
  const report = (msg) => problems.push(`${label}: ${msg}`);
  const podSc = spec.securityContext || {};
  const isHelmTest = doc.metadata && doc.metadata.annotations &&
    /\btest\b/.test(doc.metadata.annotations['helm.sh/hook'] || '');
  if (spec.automountServiceAccountToken !== false) report('automountServiceAccountToken must be false');
  const init = spec.initContainers || [];
  const main = spec.containers || [];
  const all = [...init.map((c) => ({c, init: true})), ...main.map((c) => ({c, init: false}))];
  for (const {c} of all) {
    const where = (msg) => report(`container ${c.name}: ${msg}`);
    const sc = c.securityContext || {};
    if (sc.runAsNonRoot !== true && podSc.runAsNonRoot !== true) where('runAsNonRoot must be true');
    if (sc.allowPrivilegeEscalation !== false) where('allowPrivilegeEscalation must be false');
    const drop = (sc.capabilities && sc.capabilities.drop) || [];
    if (!drop.includes('ALL')) where('capabilities.drop must include ALL');
    if ((sc.capabilities && sc.capabilities.add || []).length) where('capabilities.add must be empty');
    const seccomp = (sc.seccompProfile || podSc.seccompProfile || {}).type;
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') where('seccompProfile must be RuntimeDefault');
    if (sc.readOnlyRootFilesystem !== true) where('readOnlyRootFilesystem must be true');
    if (sc.privileged) where('must not be privileged');
    const res = c.resources || {};
    if (!res.requests || !res.limits || !res.limits.memory) where('resources.requests and limits.memory must be set');
    for (const p of c.ports || []) {
      if (p.containerPort < 1024) where(`port ${p.containerPort} is below 1024`);
      if (p.hostPort) where('hostPort is not allowed');
    }
  }

  const proxies = all.filter(({c}) => isProxy(c));
  if (proxies.length === 0) return;
  sidecars += proxies.length;
  for (const {c, init} of proxies) {
    const where = (msg) => report(`sidecar ${c.name}: ${msg}`);
    if (init && c.restartPolicy !== 'Always') where('in initContainers it needs restartPolicy: Always (native sidecar)');
    if (!init && c.restartPolicy) where('restartPolicy is only for native sidecars (initContainers)');
    const sc = c.securityContext || {};
    const uid = sc.runAsUser !== undefined ? sc.runAsUser : podSc.runAsUser;
    if (uid !== 65532) where(`runAsUser must be 65532 (got ${uid})`);
    checkProbe(where, c, 'startupProbe', '/healthz');
    checkProbe(where, c, 'livenessProbe', '/healthz');
    checkProbe(where, c, 'readinessProbe', '/readyz');
    const secretVolumes = new Map((spec.volumes || []).filter((v) => v.secret).map((v) => [v.name, v]));
    let tlsMounts = 0;
    for (const m of c.volumeMounts || []) {
      const vol = secretVolumes.get(m.name);
      if (!vol) continue;
      tlsMounts++;
      if (m.subPath || m.subPathExpr) where(`Secret ${vol.secret.secretName} mounted with subPath: updates never arrive`);
      if (vol.secret.defaultMode !== 0o440) where(`Secret volume ${m.name} defaultMode must be 0440 (288)`);
      if (podSc.fsGroup === undefined) where('pod needs an fsGroup so the proxy can read tls.key (mode 0440)');
    }
    if (tlsMounts === 0) where('no TLS Secret volume mounted');
  }
  if (!isHelmTest) {
    if (spec.terminationGracePeriodSeconds === undefined) report('terminationGracePeriodSeconds must be set (shutdown budget)');
    for (const c of main.filter((x) => !isProxy(x))) {
      const hasPreStop = c.lifecycle && c.lifecycle.preStop;
      if (!hasPreStop) report(`app container ${c.name}: needs a preStop sleep (endpoint removal lags)`);
    }
  }
}

function checkService(label, doc) {
  services++;
  for (const p of (doc.spec && doc.spec.ports) || []) {
    const isMetrics = doc.metadata && doc.metadata.labels &&
      doc.metadata.labels['app.kubernetes.io/component'] === 'metrics';
    if (p.port === UPSTREAM_PORT || p.targetPort === UPSTREAM_PORT) {
      problems.push(`${label}: exposes the upstream port ${UPSTREAM_PORT}`);
    }
    if (!isMetrics && (p.targetPort === 'admin' || p.name === 'admin')) {
      problems.push(`${label}: exposes the admin port on a Service that is not the metrics Service`);
    }
  }
}

for (const file of files) {
  let docs;
  try {
    docs = yaml.loadAll(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    problems.push(`${file}: YAML: ${e.message.split('\n')[0]}`);
    continue;
  }
  docs.forEach((doc, i) => {
    if (!doc || typeof doc !== 'object') return;
    const label = `${file}#${i + 1} ${doc.kind}/${(doc.metadata && doc.metadata.name) || '?'}`;
    if (doc.kind === 'Service') return checkService(label, doc);
    const spec = podSpecOf(doc);
    if (spec) checkWorkload(label, doc, spec);
  });
}

for (const p of problems) process.stdout.write(`${p}\n`);
process.stdout.write(`check-pod-policy: ${workloads} workloads (${sidecars} apm-tls-proxy sidecars), ` +
  `${services} services, ${problems.length} problems\n`);
process.exit(problems.length ? 1 : 0);
