/**
 * The Kubernetes objects of one engine group: a Deployment (replicas = engines of the group) and a ClusterIP Service
 * on the engines' `modelserver` port. Labels are llm-d's (llm-d.ts) plus app.kubernetes.io/{managed-by,component};
 * they are written on every object rather than added by kustomize, so the files say what the cluster gets.
 */
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IService } from 'kubernetes-models/v1/Service';
import type { EngineGroup } from './groups.js';
import { LABELS, PORT_NAMES } from './llm-d.js';
import { podTemplate, type PodContext } from './pod.js';

export const MANAGED_BY = 'app.kubernetes.io/managed-by';
export const COMPONENT = 'app.kubernetes.io/component';

/** A label value from free text (a model name): at most 63 characters of [A-Za-z0-9._-], alphanumeric at both ends. */
export function labelValue(text: string): string {
  const v = text
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .slice(0, 63)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
  return v === '' ? 'model' : v;
}

/** The labels every object of the bundle carries (kustomization-style common labels, as llm-d's guides set). */
export function commonLabels(name: string, model: string): Record<string, string> {
  const short = model.replace(/\/+$/, '').split('/').pop() ?? model;
  return {
    [MANAGED_BY]: 'pd',
    [LABELS.guide]: name,
    [LABELS.model]: labelValue(short),
    [LABELS.engineType]: 'vllm',
    [LABELS.acceleratorVendor]: 'nvidia',
    [LABELS.acceleratorVariant]: 'gpu',
  };
}

export function objectName(name: string, group: EngineGroup): string {
  return `${name}-${group.component}`;
}

/** What selects the pods of one group: unique within the bundle (component) and across bundles (guide). */
export function groupSelector(name: string, group: EngineGroup): Record<string, string> {
  return { [LABELS.guide]: name, [LABELS.role]: group.llmdRole, [COMPONENT]: group.component };
}

export function groupLabels(common: Record<string, string>, name: string, group: EngineGroup): Record<string, string> {
  return { ...common, ...groupSelector(name, group) };
}

export function deployment(name: string, group: EngineGroup, common: Record<string, string>, ctx: PodContext): IDeployment {
  const labels = groupLabels(common, name, group);
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: objectName(name, group), labels },
    spec: {
      replicas: group.engines.length,
      selector: { matchLabels: groupSelector(name, group) },
      template: podTemplate(group, labels, ctx),
    },
  };
}

/** The group's engines behind one address (DP replicas balanced by kube-proxy; debugging and metrics in PD). */
export function service(name: string, group: EngineGroup, common: Record<string, string>): IService {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: objectName(name, group), labels: groupLabels(common, name, group) },
    spec: {
      type: 'ClusterIP',
      selector: groupSelector(name, group),
      ports: [{ name: 'http', port: group.port, targetPort: PORT_NAMES.engine, protocol: 'TCP' }],
    },
  };
}
