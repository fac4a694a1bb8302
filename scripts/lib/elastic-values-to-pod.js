#!/usr/bin/env node
// Turns helm/examples/elastic-apm-server-values.yaml into the Pod that Elastic's apm-server
// chart would render from it (the parts those values touch), so that deploy-checks.sh can
// validate the sidecar inside `extraInitContainers` (a YAML string the chart passes through
// tpl) with the same schema and unknown-field checks as our own manifests. The chart itself
// is not available offline.
//
//   node elastic-values-to-pod.js --modules NODE_MODULES_DIR VALUES_FILE > pod.yaml
'use strict';

const fs = require('fs');
const path = require('path');

const args = process.argv.slice(2);
const modulesIndex = args.indexOf('--modules');
if (modulesIndex < 0 || args.length !== 3) {
  process.stderr.write('usage: node elastic-values-to-pod.js --modules NODE_MODULES_DIR VALUES_FILE\n');
  process.exit(2);
}
const modulesDir = args[modulesIndex + 1];
const valuesFile = args.filter((_, i) => i !== modulesIndex && i !== modulesIndex + 1)[0];
const yaml = require(path.join(path.resolve(modulesDir), 'js-yaml'));

const v = yaml.load(fs.readFileSync(valuesFile, 'utf8'));
if (typeof v.extraInitContainers !== 'string') {
  process.stderr.write('extraInitContainers must be a string (the chart renders it with tpl)\n');
  process.exit(1);
}
const initContainers = yaml.load(v.extraInitContainers);
if (!Array.isArray(initContainers)) {
  process.stderr.write('extraInitContainers must hold a YAML list of containers\n');
  process.exit(1);
}

// The chart's apm-server container (templates/deployment.yaml): its probes and the
// containerPort come from values; the config file is mounted with subPath.
const volumeMounts = [...(v.extraVolumes ? v.extraVolumeMounts || [] : [])];
if (v.apmConfig) {
  for (const file of Object.keys(v.apmConfig)) {
    volumeMounts.push({name: 'apm-server-config', mountPath: `/usr/share/apm-server/${file}`,
      subPath: file, readOnly: true});
  }
}
const container = {
  name: 'apm-server',
  image: 'docker.elastic.co/apm/apm-server:8.5.1',
  imagePullPolicy: 'IfNotPresent',
  securityContext: v.securityContext,
  livenessProbe: v.livenessProbe,
  readinessProbe: v.readinessProbe,
  ports: [{containerPort: (v.service && v.service.port) || 8200, name: 'http'}],
  lifecycle: v.lifecycle,
  resources: v.resources,
  volumeMounts,
};
for (const k of Object.keys(container)) if (container[k] === undefined) delete container[k];

const volumes = [...(v.extraVolumes || [])];
if (v.apmConfig) volumes.push({name: 'apm-server-config', configMap: {name: 'apm-apm-server-config', defaultMode: 0o600}});

const pod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {name: 'elastic-apm-server-with-apm-tls-proxy', labels: {app: 'apm-server'}},
  spec: {
    securityContext: v.podSecurityContext,
    initContainers,
    containers: [container],
    volumes,
  },
};
if (pod.spec.securityContext === undefined) delete pod.spec.securityContext;
process.stdout.write('# Rendered by scripts/lib/elastic-values-to-pod.js from ' +
  `${path.basename(valuesFile)}\n` + yaml.dump(pod, {lineWidth: 120, noRefs: true}));
