{{/*
peeragent.sidecar renders the agent as one native sidecar: a list item for the
pod's initContainers, with restartPolicy Always, so it starts before the
database, runs for the pod's whole life and stops after it.

  initContainers:
    {{- include "peeragent.sidecar" (dict "root" $ "serviceName" "web") | nindent 4 }}

Put peeragent.volumes into the pod's volumes, and peeragent.servicePort into the
headless Service's ports (the SRV record the agents look up comes from it). With
cluster.source kubernetes (the default) the pod also needs serviceAccountName, bound
by peeragent.rbac, and automountServiceAccountToken: false keeps the token out of the
database's containers: the sidecar mounts its own.
*/}}
{{- define "peeragent.sidecar" -}}
{{- $v := include "peeragent.valuesOf" . | fromYaml }}
{{- $service := required "peeragent.sidecar: serviceName (the StatefulSet's headless Service) is required" .serviceName }}
{{- if and (eq $v.cluster.source "file") (not $v.cluster.expectedConfigMap.name) }}
{{- fail "peeragent.sidecar: cluster.source file needs cluster.expectedConfigMap.name (the ConfigMap holding the target size)" }}
{{- end }}
{{- $srv := include "peeragent.srv" . -}}
- name: {{ $v.containerName }}
  image: {{ include "peeragent.image" . | quote }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  # A restartable init container is a native sidecar.
  restartPolicy: Always
  args:
    # The pod's stable name is the member's identity; peers are tracked by
    # name, never by IP.
    - --node.name=$(POD_NAME)
    - --gossip.listen-address=:{{ $v.gossip.port }}
    - --gossip.advertise-address=$(POD_IP)
    - --peers.srv={{ $srv }}
    {{- with $v.peers.dnsServer }}
    - --peers.dns-server={{ . }}
    {{- end }}
    # The bootstrap size and floor, not the replicas: the agents follow those
    # live, so scaling changes nothing in this template and rolls no pod.
    - --cluster.expected={{ int $v.cluster.expected }}
    - --cluster.source={{ $v.cluster.source }}
    {{- if eq $v.cluster.source "file" }}
    - --cluster.expected-file={{ include "peeragent.sizeDir" . }}/{{ $v.cluster.expectedConfigMap.key }}
    {{- end }}
    - --cluster.stabilization-time={{ $v.cluster.stabilizationTime }}
    {{- with $v.cluster.stateFile }}
    - --cluster.state-file={{ . }}
    {{- end }}
    {{- with .ordinalStart }}
    - --cluster.ordinal-start={{ int . }}
    {{- end }}
    - --cluster.label={{ $v.clusterLabel | default (printf "%s/%s" .root.Release.Namespace $service) }}
    - --web.listen-address=:{{ $v.web.port }}
    {{- if $v.webConfig.secretName }}
    - --web.config.file={{ include "peeragent.webConfigDir" . }}/{{ $v.webConfig.key }}
    {{- end }}
    {{- if $v.gossipKeys.enabled }}
    - --gossip.keyring-dir={{ $v.gossipKeys.mountPath }}
    {{- end }}
    {{- range $v.extraArgs }}
    - {{ . | quote }}
    {{- end }}
  env:
    - name: POD_NAME
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
    - name: POD_IP
      valueFrom:
        fieldRef:
          fieldPath: status.podIP
    - name: POD_NAMESPACE
      valueFrom:
        fieldRef:
          fieldPath: metadata.namespace
    # Gossiped as --node.version and --node.zone: the pod's version label
    # (empty if unset) and its zone label (set by Kubernetes 1.33+ when it
    # copies topology labels onto pods; else empty).
    - name: NODE_VERSION
      valueFrom:
        fieldRef:
          fieldPath: metadata.labels['app.kubernetes.io/version']
    - name: NODE_ZONE
      valueFrom:
        fieldRef:
          fieldPath: metadata.labels['topology.kubernetes.io/zone']
    {{- with $v.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    - name: {{ $v.gossip.portName }}
      containerPort: {{ $v.gossip.port }}
      protocol: TCP
    - name: {{ printf "%s-udp" $v.gossip.portName | trunc 15 | trimSuffix "-" }}
      containerPort: {{ $v.gossip.port }}
      protocol: UDP
    - name: {{ $v.web.portName }}
      containerPort: {{ $v.web.port }}
      protocol: TCP
  {{- with $v.startupProbe }}
  startupProbe:
    {{- include "peeragent.probe" (dict "probe" . "values" $v) | nindent 4 }}
  {{- end }}
  {{- with $v.livenessProbe }}
  livenessProbe:
    {{- include "peeragent.probe" (dict "probe" . "values" $v) | nindent 4 }}
  {{- end }}
  {{- with $v.readinessProbe }}
  readinessProbe:
    {{- include "peeragent.probe" (dict "probe" . "values" $v) | nindent 4 }}
  {{- end }}
  {{- with $v.securityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if or $v.gossipKeys.enabled $v.webConfig.secretName $v.extraVolumeMounts (ne $v.cluster.source "flag") }}
  volumeMounts:
    {{- if eq $v.cluster.source "kubernetes" }}
    # The sidecar's own API token, where client-go's in-cluster
    # configuration reads it; the kubelet then mounts none here.
    - name: {{ include "peeragent.apiTokenVolumeName" . }}
      mountPath: /var/run/secrets/kubernetes.io/serviceaccount
      readOnly: true
    {{- end }}
    {{- if eq $v.cluster.source "file" }}
    - name: {{ include "peeragent.sizeVolumeName" . }}
      mountPath: {{ include "peeragent.sizeDir" . }}
      readOnly: true
    {{- end }}
    {{- if $v.gossipKeys.enabled }}
    - name: {{ include "peeragent.gossipVolumeName" . }}
      mountPath: {{ $v.gossipKeys.mountPath }}
      readOnly: true
    {{- end }}
    {{- if $v.webConfig.secretName }}
    - name: {{ include "peeragent.webConfigVolumeName" . }}
      mountPath: {{ include "peeragent.webConfigDir" . }}
      readOnly: true
    {{- end }}
    {{- with $v.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
{{- end }}

{{/*
peeragent.srv is the SRV name the sidecar looks its peers up by: peers.srv, or
_<gossip.portName>._tcp.<serviceName>.<namespace>.<peers.view>.<peers.domain>,
which is peerdns's peer view (every member with an address, ready or not)
with the default view "peers", and the ready view every cluster DNS serves
with "svc".
*/}}
{{- define "peeragent.srv" -}}
{{- $v := include "peeragent.valuesOf" . | fromYaml }}
{{- $v.peers.srv | default (printf "_%s._tcp.%s.%s.%s.%s" $v.gossip.portName .serviceName .root.Release.Namespace $v.peers.view (trimSuffix "." $v.peers.domain)) }}
{{- end }}

{{/*
peeragent.volumes renders the pod volumes the sidecar mounts, as list items
(nothing when gossip keys and webConfig are off). The Secrets are mounted
whole, never with subPath: only then does the kubelet update the files when a
Secret changes, which is how keys rotate without a restart (the agent reloads
the keyring; exporter-toolkit rereads the web configuration and its
certificates on every request and TLS handshake, though turning TLS on or off
needs a restart).
*/}}
{{- define "peeragent.volumes" -}}
{{- include "peeragent.volumeItems" . | trim }}
{{- end }}

{{- define "peeragent.volumeItems" -}}
{{- $v := include "peeragent.valuesOf" . | fromYaml }}
{{- if eq $v.cluster.source "kubernetes" }}
# What the kubelet would automount, for the sidecar alone: a bound token of
# the pod's ServiceAccount, the cluster's CA and the namespace.
- name: {{ include "peeragent.apiTokenVolumeName" . }}
  projected:
    defaultMode: 0444
    sources:
      - serviceAccountToken:
          path: token
          expirationSeconds: 3607
      - configMap:
          name: kube-root-ca.crt
          items:
            - key: ca.crt
              path: ca.crt
      - downwardAPI:
          items:
            - path: namespace
              fieldRef:
                fieldPath: metadata.namespace
{{- end }}
{{- if eq $v.cluster.source "file" }}
- name: {{ include "peeragent.sizeVolumeName" . }}
  configMap:
    name: {{ $v.cluster.expectedConfigMap.name }}
    defaultMode: 0444
{{- end }}
{{- if $v.gossipKeys.enabled }}
- name: {{ include "peeragent.gossipVolumeName" . }}
  secret:
    secretName: {{ include "peeragent.gossipSecretName" . }}
    # Readable by whatever user the sidecar runs as, with or without an
    # fsGroup; only the sidecar mounts it.
    defaultMode: 0444
{{- end }}
{{- with $v.webConfig.secretName }}
- name: {{ include "peeragent.webConfigVolumeName" $ }}
  secret:
    secretName: {{ . }}
    defaultMode: 0444
{{- end }}
{{- end }}

{{/*
peeragent.probe renders a probe of the sidecar with the web configuration
applied to an httpGet probe: scheme HTTPS with webConfig.tls (unless the probe
sets its own), then webConfig.probeHeaders after the probe's own httpHeaders.
Nothing changes without webConfig.secretName. Takes (dict "probe" <probe>
"values" <peeragent values>).
*/}}
{{- define "peeragent.probe" -}}
{{- $p := deepCopy .probe }}
{{- $wc := .values.webConfig }}
{{- if and $wc.secretName $p.httpGet }}
{{- if and $wc.tls (not $p.httpGet.scheme) }}
{{- $_ := set $p.httpGet "scheme" "HTTPS" }}
{{- end }}
{{- with $wc.probeHeaders }}
{{- $_ := set $p.httpGet "httpHeaders" (concat ($p.httpGet.httpHeaders | default list) .) }}
{{- end }}
{{- end }}
{{- toYaml $p }}
{{- end }}

{{/*
peeragent.servicePort renders the headless Service port the agents find each
other by, as a list item: its name and protocol make the SRV records
_<portName>._tcp.<service>.<namespace>.peers.<zone> (peerdns's peer view) and
_<portName>._tcp.<service>.<namespace>.svc.<zone> (ready members only).
*/}}
{{- define "peeragent.servicePort" -}}
{{- $v := include "peeragent.valuesOf" . | fromYaml -}}
- name: {{ $v.gossip.portName }}
  port: {{ $v.gossip.port }}
  targetPort: {{ $v.gossip.portName }}
  protocol: TCP
{{- end }}
