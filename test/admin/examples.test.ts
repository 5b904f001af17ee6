/**
 * The examples stay true: their profiles validate, their YAML parses, and the Kubernetes example
 * keeps the control API out of the Service.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, parse } from 'yaml';
import { parseProfile } from '../../src/rules/index.js';

const read = (p: string): string => fs.readFileSync(new URL(`../../examples/${p}`, import.meta.url), 'utf8');

describe('examples', () => {
  it('the Compose example parses and its profile is valid', () => {
    const compose = parse(read('docker-compose.yml')) as { services: Record<string, { environment?: Record<string, string> }> };
    expect(Object.keys(compose.services).sort()).toEqual(['aftershock', 'api', 'client']);
    expect(compose.services.aftershock?.environment?.AFTERSHOCK_TARGET).toBe('http://api:80');
    expect(parseProfile(read('profiles/example.yaml'), 'example.yaml').rules.map((r) => r.name)).toEqual(['front-503', 'front-slow']);
  });

  it('the Kubernetes sidecar example: valid profile, Service without the admin port, probes on it', () => {
    const docs = parseAllDocuments(read('k8s/sidecar.yaml')).map((d) => d.toJS() as { kind: string; data?: Record<string, string>; spec: Record<string, unknown> });
    expect(docs.map((d) => d.kind)).toEqual(['ConfigMap', 'Deployment', 'Service']);
    const [configMap, deployment, service] = docs as [(typeof docs)[number], (typeof docs)[number], (typeof docs)[number]];
    expect(parseProfile(configMap.data?.['chaos.yaml'] ?? '', 'chaos.yaml').rules).toHaveLength(1);
    const ports = (service.spec.ports as Array<{ targetPort: string | number }>).map((p) => p.targetPort);
    expect(ports).toEqual(['proxy']);
    const pod = (deployment.spec.template as { spec: { containers: Array<{ name: string; ports: Array<{ name: string; containerPort: number }>; readinessProbe?: { httpGet: { path: string; port: string } } }> } }).spec;
    const sidecar = pod.containers.find((c) => c.name === 'aftershock');
    expect(sidecar?.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'admin' });
    expect(sidecar?.ports.find((p) => p.name === 'admin')?.containerPort).toBe(8081);
  });

  it("runAsNonRoot can start the image: the Dockerfile's USER is numeric, and the example sets it on aftershock's container, not on the user's app", () => {
    // The kubelet cannot verify a user given by name ("image has non-numeric user (node)").
    const user = /^USER\s+(\S+)/m.exec(fs.readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8'))?.[1];
    expect(user).toMatch(/^\d+(:\d+)?$/);
    const deployment = parseAllDocuments(read('k8s/sidecar.yaml')).map((d) => d.toJS() as { kind: string; spec: { template: { spec: Record<string, unknown> } } })[1];
    const pod = deployment?.spec.template.spec as { securityContext?: Record<string, unknown>; containers: Array<{ name: string; securityContext?: Record<string, unknown> }> };
    expect(pod.securityContext?.runAsNonRoot).toBeUndefined();
    expect(pod.containers.find((c) => c.name === 'aftershock')?.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: Number(user?.split(':')[0]) });
  });
});
