/**
 * Offline validation of every object pd writes: the Kubernetes 1.33 OpenAPI schemas (kubernetes-models' precompiled
 * validators), then what those schemas do not check: names (RFC 1123/1035), label syntax, port ranges and names,
 * volume and mount references, and the cross-object links (selectors, Service target ports, probe ports).
 * Errors name the object and the field, e.g. `Deployment/pd-decode: /spec/template/spec/containers/0/ports/0/containerPort must be integer`.
 */
import { Deployment, type IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import { Service, type IService } from 'kubernetes-models/v1/Service';
import type { IContainer } from 'kubernetes-models/v1/Container';
import { RuntimeError } from '../../util/errors.js';
import { DNS_1035_LABEL, DNS_LABEL, DNS_SUBDOMAIN } from './options.js';

export type KubeObject = IDeployment | IService;

/** ajv's error shape (the class is exported only from a transitive package's subpath: duck-typed). */
interface SchemaIssue {
  instancePath: string;
  message?: string;
}

function schemaIssues(e: unknown): SchemaIssue[] | undefined {
  if (e instanceof Error && Array.isArray((e as { errors?: unknown }).errors)) return (e as unknown as { errors: SchemaIssue[] }).errors;
  return undefined;
}

export function objectId(o: KubeObject): string {
  return `${o.kind}/${o.metadata?.name ?? '?'}`;
}

/** Schema errors of one object, each `Kind/name: /path message`. */
export function schemaErrors(o: KubeObject): string[] {
  const model = o.kind === 'Deployment' ? new Deployment(o) : new Service(o);
  try {
    model.validate();
    return [];
  } catch (e) {
    const issues = schemaIssues(e);
    if (!issues) throw e;
    // An int-or-string failure reports each alternative; the first one says where.
    const seen = new Set<string>();
    return issues
      .map((i) => `${objectId(o)}: ${i.instancePath || '/'} ${i.message ?? 'is invalid'}`)
      .filter((line) => (seen.has(line) ? false : (seen.add(line), true)));
  }
}

const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
/** IANA service name: what a named container port must be. */
const PORT_NAME = /^(?=.*[a-z])(?!.*--)[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

function checkLabels(where: string, labels: Record<string, string> | undefined, out: string[]): void {
  for (const [key, value] of Object.entries(labels ?? {})) {
    const slash = key.lastIndexOf('/');
    const prefix = slash >= 0 ? key.slice(0, slash) : '';
    const name = key.slice(slash + 1);
    if ((prefix !== '' && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) || name.length > 63 || !LABEL_NAME.test(name)) {
      out.push(`${where}: label key "${key}" is not a valid label name`);
    }
    if (value.length > 63 || !LABEL_VALUE.test(value)) out.push(`${where}: label ${key} value "${value}" is not a valid label value (63 characters of [A-Za-z0-9._-])`);
  }
}

function checkPort(where: string, port: unknown, out: string[]): void {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) out.push(`${where} ${String(port)} is not a port (1-65535)`);
}

function checkContainers(id: string, containers: IContainer[], volumeNames: Set<string>, out: string[]): Map<string, number> {
  const names = new Set<string>();
  const portNames = new Map<string, number>();
  const portNumbers = new Set<number>();
  containers.forEach((c) => {
    const at = `${id}: container ${c.name}`;
    if (c.name.length > 63 || !DNS_LABEL.test(c.name)) out.push(`${id}: container name "${c.name}" is not an RFC 1123 label`);
    if (names.has(c.name)) out.push(`${id}: two containers are named ${c.name}`);
    names.add(c.name);
    for (const p of c.ports ?? []) {
      checkPort(`${at} port ${p.name ?? ''}`, p.containerPort, out);
      if (portNumbers.has(p.containerPort)) out.push(`${at}: containerPort ${p.containerPort} is declared twice in the pod`);
      portNumbers.add(p.containerPort);
      if (p.name === undefined) continue;
      if (p.name.length > 15 || !PORT_NAME.test(p.name)) out.push(`${at}: port name "${p.name}" is not an IANA service name (15 characters, a-z0-9-)`);
      if (portNames.has(p.name)) out.push(`${at}: port name ${p.name} is used twice in the pod`);
      portNames.set(p.name, p.containerPort);
    }
    const envNames = new Set<string>();
    for (const e of c.env ?? []) {
      if (!ENV_NAME.test(e.name)) out.push(`${at}: env name "${e.name}" is not a valid variable name`);
      if (envNames.has(e.name)) out.push(`${at}: env ${e.name} is set twice`);
      envNames.add(e.name);
    }
    const mountPaths = new Set<string>();
    for (const m of c.volumeMounts ?? []) {
      if (!volumeNames.has(m.name)) out.push(`${at}: volumeMount ${m.name} names no volume of the pod`);
      if (mountPaths.has(m.mountPath)) out.push(`${at}: two volumes are mounted at ${m.mountPath}`);
      mountPaths.add(m.mountPath);
    }
  });
  // Probes must name a port of their own container.
  for (const c of containers) {
    for (const probe of [c.startupProbe, c.readinessProbe, c.livenessProbe]) {
      const port = probe?.httpGet?.port;
      if (typeof port === 'string' && !(c.ports ?? []).some((p) => p.name === port)) {
        out.push(`${id}: container ${c.name} probe ${probe!.httpGet!.path ?? ''} names port ${port}, which the container does not declare`);
      }
    }
  }
  return portNames;
}

/** pd's own checks of one Deployment; returns its pod's named ports. */
function checkDeployment(d: IDeployment, out: string[]): Map<string, number> {
  const id = objectId(d);
  const name = d.metadata?.name ?? '';
  if (name.length > 253 || !DNS_SUBDOMAIN.test(name)) out.push(`${id}: metadata.name is not an RFC 1123 subdomain`);
  checkLabels(`${id} metadata`, d.metadata?.labels, out);
  const template = d.spec?.template;
  checkLabels(`${id} pod template`, template?.metadata?.labels, out);
  for (const [k, v] of Object.entries(d.spec?.selector.matchLabels ?? {})) {
    if (template?.metadata?.labels?.[k] !== v) out.push(`${id}: spec.selector ${k}=${v} does not match the pod template labels`);
  }
  const volumes = template?.spec?.volumes ?? [];
  const volumeNames = new Set<string>();
  for (const v of volumes) {
    if (v.name.length > 63 || !DNS_LABEL.test(v.name)) out.push(`${id}: volume name "${v.name}" is not an RFC 1123 label`);
    if (volumeNames.has(v.name)) out.push(`${id}: two volumes are named ${v.name}`);
    volumeNames.add(v.name);
  }
  const spec = template?.spec;
  return checkContainers(id, [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])], volumeNames, out);
}

function checkService(s: IService, pods: Array<{ labels: Record<string, string>; ports: Map<string, number> }>, out: string[]): void {
  const id = objectId(s);
  const name = s.metadata?.name ?? '';
  if (name.length > 63 || !DNS_1035_LABEL.test(name)) out.push(`${id}: metadata.name is not an RFC 1035 label (Service names start with a letter)`);
  checkLabels(`${id} metadata`, s.metadata?.labels, out);
  const selector = s.spec?.selector ?? {};
  const selected = pods.filter((p) => Object.entries(selector).every(([k, v]) => p.labels[k] === v));
  if (selected.length === 0) out.push(`${id}: spec.selector matches no pod of the bundle`);
  for (const p of s.spec?.ports ?? []) {
    checkPort(`${id}: port ${p.name ?? ''}`, p.port, out);
    const target = p.targetPort;
    if (typeof target === 'number') checkPort(`${id}: targetPort`, target, out);
    else if (typeof target === 'string' && selected.some((pod) => !pod.ports.has(target))) {
      out.push(`${id}: targetPort ${target} is not a named port of the pods it selects`);
    }
  }
}

/** Every problem of the bundle's objects (schema first, then pd's checks). */
export function bundleErrors(objects: readonly KubeObject[]): string[] {
  const out: string[] = [];
  for (const o of objects) out.push(...schemaErrors(o));
  const pods: Array<{ labels: Record<string, string>; ports: Map<string, number> }> = [];
  const names = new Set<string>();
  for (const o of objects) {
    const key = objectId(o);
    if (names.has(key)) out.push(`${key}: two objects have this kind and name`);
    names.add(key);
    if (o.kind === 'Deployment') pods.push({ labels: o.spec?.template.metadata?.labels ?? {}, ports: checkDeployment(o, out) });
  }
  for (const o of objects) if (o.kind === 'Service') checkService(o, pods, out);
  return out;
}

/** Throw when any object is invalid: the first problem in the message, the rest as details. */
export function assertBundleValid(objects: readonly KubeObject[]): void {
  const errors = bundleErrors(objects);
  if (errors.length === 0) return;
  throw new RuntimeError(`the rendered bundle is invalid: ${errors[0]}`, {
    details: errors.slice(1),
    hint: 'A field that comes from the configuration (an env name, an argument) must be fixed there; anything else is a pd bug, please report it.',
  });
}
