{{/*
peeragent.rbac renders the Role and RoleBinding the agents need with
cluster.source kubernetes: get, list and watch on their own StatefulSet and
nothing else (resourceNames; the agent's list and watch carry the matching
metadata.name field selector). Put it in the database chart's templates:

  {{ include "peeragent.rbac" (dict "root" $ "statefulSetName" "web" "serviceAccountName" "web") }}

The ServiceAccount itself is the database chart's.
*/}}
{{- define "peeragent.rbac" -}}
{{- $sts := required "peeragent.rbac: statefulSetName (the StatefulSet the agents watch) is required" .statefulSetName }}
{{- $sa := required "peeragent.rbac: serviceAccountName (the ServiceAccount its pods run as) is required" .serviceAccountName }}
{{- $name := printf "%s-peeragent" $sts | trunc 63 | trimSuffix "-" }}
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ $name }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "peeragent.labels" . | nindent 4 }}
rules:
  - apiGroups: ["apps"]
    resources: ["statefulsets"]
    resourceNames: [{{ $sts | quote }}]
    verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ $name }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "peeragent.labels" . | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ $name }}
subjects:
  - kind: ServiceAccount
    name: {{ $sa }}
    namespace: {{ .root.Release.Namespace }}
{{- end }}
