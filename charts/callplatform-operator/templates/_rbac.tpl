{{/*
The permissions the operator uses, and nothing more (docs/production-guide.md explains each rule).
The same list serves the ClusterRole (all namespaces) and each namespaced Role (a watch list).
*/}}
{{- define "callplatform-operator.namespacedRules" -}}
# Watch CallPlatforms; the operator never writes their spec or metadata.
- apiGroups: [callplatform.io]
  resources: [callplatforms]
  verbs: [get, list, watch]
# Conditions, findings and observedGeneration.
- apiGroups: [callplatform.io]
  resources: [callplatforms/status]
  verbs: [patch]
# Owned objects carry ownerReferences with blockOwnerDeletion; clusters that enable the
# OwnerReferencesPermissionEnforcement admission plugin require this to set it.
- apiGroups: [callplatform.io]
  resources: [callplatforms/finalizers]
  verbs: [update]
# Referenced Secrets are read and watched (a change re-reconciles the platform); the TURN config,
# ICE servers and generated secrets are Secrets the operator owns (server-side apply: a PATCH
# that creates the object when it is missing, so `create` as well). Never delete: owner
# references and the garbage collector remove what a deleted platform owned.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create, patch]
# Security headers ConfigMap and the calls Service.
- apiGroups: [""]
  resources: [configmaps, services]
  verbs: [get, list, watch, create, patch]
# The calls Deployment; a managed coturn's Deployment or DaemonSet (spec.turn.server).
- apiGroups: [apps]
  resources: [deployments, daemonsets]
  verbs: [get, list, watch, create, patch]
# A managed coturn's PodDisruptionBudget and NetworkPolicy.
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch, create, patch]
# Its ServiceMonitor, when coturn's Prometheus listener is on and the cluster serves the CRD
# (watched then, so drift is repaired at once; unused where the CRD is not installed).
- apiGroups: [monitoring.coreos.com]
  resources: [servicemonitors]
  verbs: [get, list, watch, create, patch]
# The platform's own Namespace: its Pod Security label decides whether a hostNetwork coturn
# (mode DaemonSet) can start. A GET of a namespace is authorized in that namespace, so a Role works.
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get]
# Migration and demo seed Jobs (ttlSecondsAfterFinished cleans finished ones up).
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, patch]
# The HTTPRoute of spec.gateway (Gateway API), watched where the cluster serves it. Harmless where
# its CRDs are not installed: the operator then reports GatewayRouteReady=False (GatewayAPINotInstalled).
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [get, list, watch, create, patch]
# Events on transitions (core/v1 Events, as `kubectl describe` shows them).
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end -}}
