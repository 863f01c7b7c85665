{{/* Names and labels. */}}
{{- define "zas.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "zas.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "zas.selectorLabels" -}}
app.kubernetes.io/name: {{ include "zas.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "zas.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "zas.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: server
app.kubernetes.io/part-of: zot-artifact-store
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "zas.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "zas.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "zas.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "zas.scheme" -}}
{{- if .Values.tls.enabled }}https{{ else }}http{{ end -}}
{{- end -}}

{{/* Secret names: a user's existing Secret, or the one the chart renders. */}}
{{- define "zas.generatedSecret" -}}
{{- printf "%s-generated" (include "zas.fullname" .) -}}
{{- end -}}

{{- define "zas.secretName" -}}
{{- printf "%s-secrets" (include "zas.fullname" .) -}}
{{- end -}}

{{- define "zas.tlsSecret" -}}
{{- default (printf "%s-tls" (include "zas.fullname" .)) .Values.tls.existingSecret -}}
{{- end -}}

{{- define "zas.mongodbEnabled" -}}
{{- if or .Values.metadata.mongodb.uri .Values.metadata.mongodb.existingSecret }}true{{ end -}}
{{- end -}}

{{- define "zas.rootPasswordGenerated" -}}
{{- if and .Values.auth.root.enabled (not .Values.auth.root.existingSecret) (not .Values.auth.root.password) }}true{{ end -}}
{{- end -}}

{{- define "zas.sharedKeysGenerated" -}}
{{- if and (not .Values.auth.sharedKeys.existingSecret) .Values.auth.sharedKeys.generate }}true{{ end -}}
{{- end -}}

{{- define "zas.s3InlineKeys" -}}
{{- $c := .Values.storage.s3.credentials -}}
{{- if and (eq .Values.storage.type "s3") (not $c.existingSecret) $c.accessKey }}true{{ end -}}
{{- end -}}

{{- define "zas.s3SecretKeys" -}}
{{- $c := .Values.storage.s3.credentials -}}
{{- if and (eq .Values.storage.type "s3") (or $c.existingSecret $c.accessKey) }}true{{ end -}}
{{- end -}}

{{/* The data directory is a PVC (filesystem backend with persistence) or an emptyDir. */}}
{{- define "zas.pvcEnabled" -}}
{{- if and (eq .Values.storage.type "filesystem") .Values.storage.persistence.enabled }}true{{ end -}}
{{- end -}}

{{- define "zas.pvcName" -}}
{{- default (printf "%s-data" (include "zas.fullname" .)) .Values.storage.persistence.existingClaim -}}
{{- end -}}

{{- define "zas.externalUrl" -}}
{{- if .Values.http.externalUrl -}}
{{- .Values.http.externalUrl -}}
{{- else if and .Values.route.enabled .Values.route.host -}}
{{- printf "https://%s" .Values.route.host -}}
{{- else if and .Values.ingress.enabled .Values.ingress.hosts -}}
{{- $host := (first .Values.ingress.hosts).host -}}
{{- printf "%s://%s" (ternary "https" "http" (gt (len .Values.ingress.tls) 0)) $host -}}
{{- end -}}
{{- end -}}

{{- define "zas.terminationGracePeriodSeconds" -}}
{{- $least := add .Values.preStopSleepSeconds .Values.http.shutdownTimeoutSeconds -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds -}}
{{- add $least 10 -}}
{{- else -}}
{{- .Values.terminationGracePeriodSeconds -}}
{{- end -}}
{{- end -}}

{{/*
Refusals: combinations that would deploy but lose or split data. Every message says why and
what to set instead.
*/}}
{{- define "zas.validate" -}}
{{- $replicas := int .Values.replicas -}}
{{- if gt $replicas 1 -}}
{{- if eq .Values.storage.type "filesystem" -}}
{{- if not .Values.storage.persistence.enabled -}}
{{- fail (printf "replicas=%d with storage.type=filesystem and storage.persistence.enabled=false: every replica would keep its own blobs in its own emptyDir. Use an object store (storage.type=s3, azure or gcs), or a ReadWriteMany volume (storage.persistence.accessModes=[ReadWriteMany]), or replicas=1." $replicas) -}}
{{- end -}}
{{- if not (has "ReadWriteMany" .Values.storage.persistence.accessModes) -}}
{{- fail (printf "replicas=%d with storage.type=filesystem needs a ReadWriteMany volume: storage.persistence.accessModes=%v can be mounted by one node at a time, so the other replicas would never start (or would write to different disks). Use an object store (storage.type=s3, azure or gcs: any replica count), or a storage class that provides ReadWriteMany with storage.persistence.accessModes=[ReadWriteMany], or replicas=1." $replicas .Values.storage.persistence.accessModes) -}}
{{- end -}}
{{- end -}}
{{- if not (include "zas.mongodbEnabled" .) -}}
{{- fail (printf "replicas=%d needs an external MongoDB: without metadata.mongodb.uri or metadata.mongodb.existingSecret every replica keeps its own SQLite metadata. Set metadata.mongodb.uri (a replica set), or replicas=1." $replicas) -}}
{{- end -}}
{{- if and (not .Values.auth.sharedKeys.existingSecret) (not .Values.auth.sharedKeys.generate) -}}
{{- fail (printf "replicas=%d needs keys shared by every replica: set auth.sharedKeys.existingSecret or auth.sharedKeys.generate=true." $replicas) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.route.enabled (has .Values.route.tls.termination (list "reencrypt" "passthrough")) (not .Values.tls.enabled) -}}
{{- fail (printf "route.tls.termination=%s sends TLS to the pod: set tls.enabled=true (with tls.existingSecret, or tls.openshiftServingCert=true on OpenShift), or use route.tls.termination=edge." .Values.route.tls.termination) -}}
{{- end -}}
{{- if and .Values.tls.enabled (not .Values.tls.existingSecret) (not .Values.tls.openshiftServingCert) -}}
{{- fail "tls.enabled=true needs a certificate: set tls.existingSecret (a kubernetes.io/tls Secret) or tls.openshiftServingCert=true (OpenShift's service CA)." -}}
{{- end -}}
{{- if and .Values.supplyChain.signing.enabled (not .Values.supplyChain.signing.existingSecret) (not .Values.supplyChain.signing.key) -}}
{{- fail "supplyChain.signing.enabled=true needs the key: set supplyChain.signing.existingSecret or supplyChain.signing.key (PEM)." -}}
{{- end -}}
{{- if and .Values.tracing.enabled (not .Values.tracing.endpoint) -}}
{{- fail "tracing.enabled=true needs tracing.endpoint (an OTLP/HTTP traces URL)." -}}
{{- end -}}
{{- $c := .Values.storage.s3.credentials -}}
{{- if and (eq .Values.storage.type "s3") (not $c.existingSecret) (ne (empty $c.accessKey) (empty $c.secretKey)) -}}
{{- fail "storage.s3.credentials: set both accessKey and secretKey, or neither (the default AWS credential chain), or existingSecret." -}}
{{- end -}}
{{- $az := .Values.storage.azure -}}
{{- if and (eq .Values.storage.type "azure") (not $az.accountname) (not (and $az.credentials.existingSecret $az.credentials.connectionStringKey)) -}}
{{- fail "storage.type=azure needs storage.azure.accountname, or a connection string (storage.azure.credentials.existingSecret with connectionStringKey)." -}}
{{- end -}}
{{- if not (kindIs "invalid" .Values.terminationGracePeriodSeconds) -}}
{{- $least := add .Values.preStopSleepSeconds .Values.http.shutdownTimeoutSeconds -}}
{{- if le (int .Values.terminationGracePeriodSeconds) (int $least) -}}
{{- fail (printf "terminationGracePeriodSeconds=%v must be longer than preStopSleepSeconds + http.shutdownTimeoutSeconds (%v), or in-flight requests are killed." .Values.terminationGracePeriodSeconds $least) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Where secrets are mounted (one directory per Secret). */}}
{{- define "zas.secretsDir" -}}/run/secrets/zas{{- end -}}

{{/* The server's config file (Zot's shape), rendered from the values. */}}
{{- define "zas.config" -}}
{{- $v := .Values -}}
{{- $dir := include "zas.secretsDir" . -}}
{{- $http := dict "address" "0.0.0.0" "port" 8080 "workers" (int $v.http.workers) "shutdownTimeout" (int $v.http.shutdownTimeoutSeconds) -}}
{{- with include "zas.externalUrl" . }}{{ $_ := set $http "externalUrl" . }}{{ end -}}
{{- if gt (int64 $v.http.maxObjectSize) 0 }}{{ $_ := set $http "maxObjectSize" (int64 $v.http.maxObjectSize) }}{{ end -}}
{{- if $v.tls.enabled }}{{ $_ := set $http "tls" (dict "cert" (printf "%s/tls/tls.crt" $dir) "key" (printf "%s/tls/tls.key" $dir)) }}{{ end -}}
{{- with $v.http.trustedProxies }}{{ $_ := set $http "trustedProxies" . }}{{ end -}}
{{- with $v.http.cors.allowOrigins }}{{ $_ := set $http "cors" (dict "allowOrigins" . "allowCredentials" $v.http.cors.allowCredentials "maxAge" $v.http.cors.maxAge) }}{{ end -}}
{{- $storage := dict "rootDirectory" "/var/lib/zas" "gc" $v.storage.gc.enabled "gcDelay" $v.storage.gc.delay "gcInterval" $v.storage.gc.interval "untaggedRetention" $v.storage.gc.untaggedRetention -}}
{{- if eq $v.storage.type "s3" -}}
{{- $s3 := $v.storage.s3 -}}
{{- $driver := dict "name" "s3" "bucket" $s3.bucket "region" $s3.region "rootdirectory" $s3.rootdirectory "forcepathstyle" $s3.forcepathstyle "secure" $s3.secure "skipverify" $s3.skipverify "chunksize" (int64 $s3.chunksize) "redirect" $s3.redirect "redirectexpiry" (int64 $s3.redirectexpiry) -}}
{{- range $key := list "regionendpoint" "storageclass" "sse" "ssekmskeyid" -}}
{{- with index $s3 $key }}{{ $_ := set $driver $key . }}{{ end -}}
{{- end -}}
{{- $_ := set $storage "storageDriver" $driver -}}
{{- else if eq $v.storage.type "azure" -}}
{{- $az := $v.storage.azure -}}
{{- $driver := dict "name" "azure" "container" $az.container "rootdirectory" $az.rootdirectory "realm" $az.realm "chunksize" (int64 $az.chunksize) "redirect" $az.redirect "redirectexpiry" (int64 $az.redirectexpiry) -}}
{{- range $key := list "accountname" "endpoint" -}}
{{- with index $az $key }}{{ $_ := set $driver $key . }}{{ end -}}
{{- end -}}
{{- $_ := set $storage "storageDriver" $driver -}}
{{- else if eq $v.storage.type "gcs" -}}
{{- $gcs := $v.storage.gcs -}}
{{- $driver := dict "name" "gcs" "bucket" $gcs.bucket "rootdirectory" $gcs.rootdirectory "chunksize" (int64 $gcs.chunksize) "redirect" $gcs.redirect "redirectexpiry" (int64 $gcs.redirectexpiry) -}}
{{- with $gcs.endpoint }}{{ $_ := set $driver "endpoint" . }}{{ end -}}
{{- with $gcs.credentials.existingSecret }}{{ $_ := set $driver "keyfile" (printf "%s/gcs/%s" $dir $gcs.credentials.keyFileKey) }}{{ end -}}
{{- $_ := set $storage "storageDriver" $driver -}}
{{- end -}}
{{- $auth := dict "audit" (dict "enable" $v.auth.audit.enable "retention" $v.auth.audit.retention) -}}
{{- if $v.auth.root.enabled }}{{ $_ := set $auth "root" (dict "user" $v.auth.root.user) }}{{ end -}}
{{- if or $v.auth.sharedKeys.existingSecret $v.auth.sharedKeys.generate -}}
{{- $_ := set $auth "secretsKeyFile" (printf "%s/keys/secrets.key" $dir) -}}
{{- $_ := set $auth "token" (dict "keyFile" (printf "%s/keys/registry-token.key" $dir)) -}}
{{- end -}}
{{- with $v.auth.oidc }}{{ $_ := set $auth "oidc" . }}{{ end -}}
{{- with $v.auth.trust }}{{ $_ := set $auth "trust" . }}{{ end -}}
{{- with $v.auth.roles }}{{ $_ := set $auth "roles" . }}{{ end -}}
{{- $tracing := dict "enable" $v.tracing.enabled "serviceName" $v.tracing.serviceName "sampleRatio" $v.tracing.sampleRatio -}}
{{- with $v.tracing.endpoint }}{{ $_ := set $tracing "endpoint" . }}{{ end -}}
{{- $extensions := dict "metrics" (dict "enable" $v.metrics.enabled "protected" $v.metrics.protected) "tracing" $tracing "supplychain" (dict "trustedRoot" $v.supplyChain.trustedRoot "signing" (dict "generate" false)) "webhooks" (dict "enable" $v.webhooks.enabled "allowNetworks" $v.webhooks.allowNetworks) -}}
{{- /* Never a key made per pod: signing uses the key from a Secret (supplyChain.signing) or is off. */ -}}
{{- $config := dict "http" $http "storage" $storage "auth" $auth "extensions" $extensions "log" (dict "level" $v.log.level "format" $v.log.format) "s3" (dict "region" $v.s3.region "blockPublicAccess" $v.s3.blockPublicAccess) -}}
{{- $config = mergeOverwrite $config (deepCopy $v.extraConfig) -}}
{{- toYaml $config -}}
{{- end -}}

{{/* Secrets handed to the server as files, by the ZAS_…_FILE variables. */}}
{{- define "zas.secretFileEnv" -}}
{{- $dir := include "zas.secretsDir" . -}}
{{- if .Values.auth.root.enabled }}
- name: ZAS_ROOT_PASSWORD_FILE
  value: {{ printf "%s/root/%s" $dir (ternary .Values.auth.root.passwordKey "root-password" (not (include "zas.rootPasswordGenerated" .))) }}
{{- end }}
{{- if include "zas.mongodbEnabled" . }}
- name: ZAS_METADATA_URI_FILE
  value: {{ printf "%s/mongodb/%s" $dir .Values.metadata.mongodb.uriKey }}
{{- end }}
{{- if include "zas.s3SecretKeys" . }}
- name: ZAS_STORAGE_STORAGEDRIVER_ACCESSKEY_FILE
  value: {{ printf "%s/s3/%s" $dir .Values.storage.s3.credentials.accessKeyKey }}
- name: ZAS_STORAGE_STORAGEDRIVER_SECRETKEY_FILE
  value: {{ printf "%s/s3/%s" $dir .Values.storage.s3.credentials.secretKeyKey }}
{{- end }}
{{- $az := .Values.storage.azure.credentials -}}
{{- if and (eq .Values.storage.type "azure") $az.existingSecret }}
{{- if $az.connectionStringKey }}
- name: ZAS_STORAGE_STORAGEDRIVER_CONNECTIONSTRING_FILE
  value: {{ printf "%s/azure/%s" $dir $az.connectionStringKey }}
{{- else }}
- name: ZAS_STORAGE_STORAGEDRIVER_ACCOUNTKEY_FILE
  value: {{ printf "%s/azure/%s" $dir $az.accountKeyKey }}
{{- end }}
{{- end }}
{{- if .Values.supplyChain.signing.enabled }}
- name: ZAS_EXTENSIONS_SUPPLYCHAIN_SIGNING_KEY_FILE
  value: {{ printf "%s/signing/%s" $dir .Values.supplyChain.signing.keyKey }}
{{- end }}
{{- end -}}

{{/* One Secret volume per purpose: (name, secret, mount dir). */}}
{{- define "zas.secretVolumes" -}}
{{- $dir := include "zas.secretsDir" . -}}
{{- $chartSecret := include "zas.secretName" . -}}
{{- $generated := include "zas.generatedSecret" . -}}
{{- $vols := list -}}
{{- if .Values.auth.root.enabled -}}
{{- if .Values.auth.root.existingSecret -}}
{{- $vols = append $vols (dict "name" "root" "secret" .Values.auth.root.existingSecret "items" (list (dict "key" .Values.auth.root.passwordKey "path" .Values.auth.root.passwordKey))) -}}
{{- else if .Values.auth.root.password -}}
{{- $vols = append $vols (dict "name" "root" "secret" $chartSecret "items" (list (dict "key" "root-password" "path" .Values.auth.root.passwordKey))) -}}
{{- else -}}
{{- $vols = append $vols (dict "name" "root" "secret" $generated "items" (list (dict "key" "root-password" "path" "root-password"))) -}}
{{- end -}}
{{- end -}}
{{- if .Values.auth.sharedKeys.existingSecret -}}
{{- $vols = append $vols (dict "name" "keys" "secret" .Values.auth.sharedKeys.existingSecret "items" (list (dict "key" "secrets.key" "path" "secrets.key") (dict "key" "registry-token.key" "path" "registry-token.key"))) -}}
{{- else if .Values.auth.sharedKeys.generate -}}
{{- $vols = append $vols (dict "name" "keys" "secret" $generated "items" (list (dict "key" "secrets.key" "path" "secrets.key") (dict "key" "registry-token.key" "path" "registry-token.key"))) -}}
{{- end -}}
{{- if include "zas.mongodbEnabled" . -}}
{{- $secret := default $chartSecret .Values.metadata.mongodb.existingSecret -}}
{{- $key := ternary .Values.metadata.mongodb.uriKey "mongodb-uri" (not (empty .Values.metadata.mongodb.existingSecret)) -}}
{{- $vols = append $vols (dict "name" "mongodb" "secret" $secret "items" (list (dict "key" $key "path" .Values.metadata.mongodb.uriKey))) -}}
{{- end -}}
{{- if include "zas.s3SecretKeys" . -}}
{{- $c := .Values.storage.s3.credentials -}}
{{- if $c.existingSecret -}}
{{- $vols = append $vols (dict "name" "s3" "secret" $c.existingSecret "items" (list (dict "key" $c.accessKeyKey "path" $c.accessKeyKey) (dict "key" $c.secretKeyKey "path" $c.secretKeyKey))) -}}
{{- else -}}
{{- $vols = append $vols (dict "name" "s3" "secret" $chartSecret "items" (list (dict "key" "s3-accesskey" "path" $c.accessKeyKey) (dict "key" "s3-secretkey" "path" $c.secretKeyKey))) -}}
{{- end -}}
{{- end -}}
{{- $az := .Values.storage.azure.credentials -}}
{{- if and (eq .Values.storage.type "azure") $az.existingSecret -}}
{{- $key := default $az.accountKeyKey $az.connectionStringKey -}}
{{- $vols = append $vols (dict "name" "azure" "secret" $az.existingSecret "items" (list (dict "key" $key "path" $key))) -}}
{{- end -}}
{{- $gcs := .Values.storage.gcs.credentials -}}
{{- if and (eq .Values.storage.type "gcs") $gcs.existingSecret -}}
{{- $vols = append $vols (dict "name" "gcs" "secret" $gcs.existingSecret "items" (list (dict "key" $gcs.keyFileKey "path" $gcs.keyFileKey))) -}}
{{- end -}}
{{- if .Values.supplyChain.signing.enabled -}}
{{- $s := .Values.supplyChain.signing -}}
{{- $secret := default $chartSecret $s.existingSecret -}}
{{- $key := ternary $s.keyKey "signing-key" (not (empty $s.existingSecret)) -}}
{{- $vols = append $vols (dict "name" "signing" "secret" $secret "items" (list (dict "key" $key "path" $s.keyKey))) -}}
{{- end -}}
{{- toJson $vols -}}
{{- end -}}

{{/* Does the chart render its own Secret (values given inline)? */}}
{{- define "zas.chartSecretNeeded" -}}
{{- $v := .Values -}}
{{- if or (and $v.auth.root.enabled (not $v.auth.root.existingSecret) $v.auth.root.password) (and $v.metadata.mongodb.uri (not $v.metadata.mongodb.existingSecret)) (include "zas.s3InlineKeys" .) (and $v.supplyChain.signing.enabled (not $v.supplyChain.signing.existingSecret) $v.supplyChain.signing.key) }}true{{ end -}}
{{- end -}}

{{/* The restricted security context (Kubernetes restricted PSS, OpenShift restricted-v2). */}}
{{- define "zas.podSecurityContext" -}}
runAsNonRoot: true
seccompProfile:
  type: RuntimeDefault
{{- if not .Values.openshift.enabled }}
{{- with .Values.podSecurityContext.fsGroup }}
fsGroup: {{ . }}
fsGroupChangePolicy: OnRootMismatch
{{- end }}
{{- end }}
{{- end -}}

{{- define "zas.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}
