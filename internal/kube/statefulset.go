package kube

import (
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/pgsync/pgsync/internal/cluster"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// Probe timing. The startup probe gives postgres spec.startDelay to become
// ready (initdb, a base backup, crash recovery) before the kubelet restarts
// the container; liveness only checks that the manager runs.
const (
	startupPeriod    = 1
	readinessPeriod  = 1
	livenessPeriod   = 10
	livenessFailures = 3
	probeTimeout     = 5
	// stopMargin is added to spec.stopDelay for the grace period: the
	// manager's smart shutdown lasts stopDelay, then a fast shutdown needs
	// a little more before the kubelet's SIGKILL.
	stopMargin = 10
)

// Volume names.
const (
	volData        = pc.DataVolume
	volWAL         = pc.WALVolume
	volController  = "controller"
	volTmp         = "tmp"
	volRun         = "run"
	volParams      = "params"
	volCredentials = "credentials"
	volCA          = "ca"
	volAPIToken    = "kube-api-access"
)

// podSelector selects the StatefulSet's pods. Immutable once created.
func podSelector(c *cluster.Cluster) map[string]string {
	return map[string]string{pc.LabelCluster: c.Metadata.Name}
}

func statefulSet(c *cluster.Cluster, opts Options) (*appsv1.StatefulSet, error) {
	n := NamesOf(c)
	applied, err := AppliedSpec(c)
	if err != nil {
		return nil, err
	}
	spec, err := podSpec(c, opts)
	if err != nil {
		return nil, err
	}
	data, err := volumeClaim(c, volData, "spec.storage", &c.Spec.Storage)
	if err != nil {
		return nil, err
	}
	claims := []corev1.PersistentVolumeClaim{data}
	if w := c.Spec.WALStorage; w != nil {
		wal, err := volumeClaim(c, volWAL, "spec.walStorage", w)
		if err != nil {
			return nil, err
		}
		claims = append(claims, wal)
	}
	m := meta(c, n.StatefulSet())
	m.Annotations = map[string]string{pc.AnnAppliedSpec: applied}
	if len(c.Metadata.Labels) > 0 || len(c.Metadata.Annotations) > 0 {
		raw, err := json.Marshal(appliedMetadata{Labels: c.Metadata.Labels, Annotations: c.Metadata.Annotations})
		if err != nil {
			return nil, fmt.Errorf("render %s applied metadata: %w", c.Key(), err)
		}
		m.Annotations[pc.AnnAppliedMetadata] = string(raw)
	}
	if opts.Commit != "" {
		m.Annotations[pc.AnnAppliedCommit] = opts.Commit
	}
	replicas := ptr(int32(c.Spec.Instances))
	if opts.Replicas != nil {
		replicas = ptr(*opts.Replicas)
	}
	return &appsv1.StatefulSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: m,
		Spec: appsv1.StatefulSetSpec{
			Replicas:    replicas,
			ServiceName: n.Headless(),
			Selector:    &metav1.LabelSelector{MatchLabels: podSelector(c)},
			// Parallel: pgsync alone orders pod creation and deletion (it
			// moves replicas one step at a time, each Ready before the
			// next); OrderedReady would let one unready pod stop the
			// controller from recreating or removing any other.
			PodManagementPolicy: appsv1.ParallelPodManagement,
			// OnDelete: pgsync alone decides when a pod restarts.
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType},
			// Never delete volumes (DESIGN.md §7.7), stated explicitly.
			PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
				WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
				WhenScaled:  appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      labels(c),
					Annotations: Revisions(c),
				},
				Spec: spec,
			},
			VolumeClaimTemplates: claims,
		},
	}, nil
}

// containerSecurity passes PodSecurity `restricted` with a read-only root.
func containerSecurity() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsNonRoot:             ptr(true),
		AllowPrivilegeEscalation: ptr(false),
		ReadOnlyRootFilesystem:   ptr(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
}

func podSpec(c *cluster.Cluster, opts Options) (corev1.PodSpec, error) {
	n := NamesOf(c)
	requests, err := resourceList(c.Spec.Resources.Requests)
	if err != nil {
		return corev1.PodSpec{}, fmt.Errorf("render %s: spec.resources.requests: %w", c.Key(), err)
	}
	limits, err := resourceList(c.Spec.Resources.Limits)
	if err != nil {
		return corev1.PodSpec{}, fmt.Errorf("render %s: spec.resources.limits: %w", c.Key(), err)
	}
	pull := opts.InstanceImagePullPolicy
	if pull == "" {
		pull = corev1.PullIfNotPresent
	}
	uid := int64(pc.PostgresUID)
	http := func(path string) corev1.ProbeHandler {
		return corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString(pc.PortNameHTTP),
			Scheme: corev1.URISchemeHTTP}}
	}
	startDelay := c.Spec.StartDelay
	if startDelay < startupPeriod {
		startDelay = startupPeriod
	}
	env := []corev1.EnvVar{
		{Name: pc.EnvCluster, Value: c.Metadata.Name},
		fieldEnv(pc.EnvPodName, "metadata.name"),
		fieldEnv(pc.EnvPodNamespace, "metadata.namespace"),
		fieldEnv(pc.EnvPodIP, "status.podIP"),
		{Name: pc.EnvPGData, Value: pc.PGData},
		{Name: pc.EnvParametersFile, Value: pc.ParamsFile},
		{Name: pc.EnvConfigRevisionFile, Value: pc.ConfigRevisionFile},
		{Name: pc.EnvSuperuserPassword + pc.FileSuffix, Value: pc.SuperuserPasswordFile},
		{Name: pc.EnvReplicationPassword + pc.FileSuffix, Value: pc.ReplicationPasswordFile},
		{Name: pc.EnvAppPassword + pc.FileSuffix, Value: pc.AppPasswordFile},
		{Name: pc.EnvAppUser, Value: c.AppOwner()},
		{Name: pc.EnvAppDatabase, Value: c.AppDatabase()},
		{Name: pc.EnvCADir, Value: pc.CADir},
		{Name: pc.EnvCAGenerations, Value: strconv.Itoa(pc.CAGenerations)},
	}
	if names := c.ServerAltDNSNames(); len(names) > 0 {
		env = append(env, corev1.EnvVar{Name: pc.EnvServerAltDNSNames, Value: strings.Join(names, ",")})
	}
	if e, ok, err := initDBEnv(c); err != nil {
		return corev1.PodSpec{}, err
	} else if ok {
		env = append(env, e)
	}
	run := pc.Run{
		RunDir:          pc.RunDir,
		Port:            pc.PostgresPort,
		HTTPAddr:        ":" + strconv.Itoa(pc.HTTPPort),
		StopDelay:       seconds(c.Spec.StopDelay),
		SwitchoverDelay: seconds(c.Spec.SwitchoverDelay),
		FailoverDelay:   seconds(c.Spec.FailoverDelay),
		// Load checked the annotations: an error here cannot happen.
		LeaseDuration: leaseDuration(c),
	}
	ports := []corev1.ContainerPort{
		{Name: pc.PortNamePG, ContainerPort: pc.PostgresPort, Protocol: corev1.ProtocolTCP},
		{Name: pc.PortNameHTTP, ContainerPort: pc.HTTPPort, Protocol: corev1.ProtocolTCP},
	}
	if c.Spec.MetricsOn() {
		run.MetricsAddr, run.NoDefaultQueries = ":"+strconv.Itoa(pc.MetricsPort), !c.Spec.DefaultQueries()
		run.MetricsQueries, run.MetricsTLS = metricsQueryFiles(c), c.Spec.MetricsTLS()
		ports = append(ports, corev1.ContainerPort{Name: pc.PortNameMetrics, ContainerPort: pc.MetricsPort, Protocol: corev1.ProtocolTCP})
	}
	postgres := corev1.Container{
		Name:            pc.ContainerPostgres,
		Image:           c.Spec.ImageName,
		ImagePullPolicy: corev1.PullPolicy(c.Spec.ImagePullPolicy),
		Command:         pc.RunCommand(),
		Args:            run.Args(),
		Env:             env,
		Ports:           ports,
		Resources:       corev1.ResourceRequirements{Requests: requests, Limits: limits},
		StartupProbe: &corev1.Probe{ProbeHandler: http(pc.PathReadyz), PeriodSeconds: startupPeriod,
			TimeoutSeconds:   probeTimeout,
			FailureThreshold: int32((startDelay + startupPeriod - 1) / startupPeriod), SuccessThreshold: 1},
		ReadinessProbe: &corev1.Probe{ProbeHandler: http(pc.PathReadyz), PeriodSeconds: readinessPeriod,
			TimeoutSeconds: probeTimeout, FailureThreshold: 3, SuccessThreshold: 1},
		LivenessProbe: &corev1.Probe{ProbeHandler: http(pc.PathHealthz), PeriodSeconds: livenessPeriod,
			TimeoutSeconds: probeTimeout, FailureThreshold: livenessFailures, SuccessThreshold: 1},
		VolumeMounts: []corev1.VolumeMount{
			{Name: volData, MountPath: pc.DataMount},
			{Name: volController, MountPath: pc.ControllerDir, ReadOnly: true},
			{Name: volTmp, MountPath: "/tmp"},
			{Name: volRun, MountPath: "/run"},
			{Name: volParams, MountPath: pc.ParamsDir, ReadOnly: true},
			{Name: volCredentials, MountPath: pc.CredentialsDir, ReadOnly: true},
			{Name: volCA, MountPath: pc.CADir, ReadOnly: true},
			{Name: volAPIToken, MountPath: pc.ServiceAccountDir, ReadOnly: true},
		},
		// The kubelet stops the container with the image's STOPSIGNAL,
		// SIGINT (fast shutdown) in many PostgreSQL images; the hook asks
		// the manager for its graceful stop first and waits for it.
		Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{
			Command: pc.StopCommand(seconds(c.Spec.StopDelay + stopMargin)),
		}}},
		SecurityContext:          containerSecurity(),
		TerminationMessagePath:   corev1.TerminationMessagePathDefault,
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
	if c.Spec.WALStorage != nil {
		postgres.Env = append(postgres.Env, corev1.EnvVar{Name: pc.EnvWALDir, Value: pc.WALDir})
		postgres.VolumeMounts = append(postgres.VolumeMounts, corev1.VolumeMount{Name: volWAL, MountPath: pc.WALMount})
	}
	applyProbes(c, &postgres)
	applyContainerSecurity(c, postgres.SecurityContext)
	bootstrap := corev1.Container{
		Name:                     pc.ContainerBootstrap,
		Image:                    opts.InstanceImage,
		ImagePullPolicy:          pull,
		Command:                  pc.BootstrapCommand(),
		VolumeMounts:             []corev1.VolumeMount{{Name: volController, MountPath: pc.ControllerDir}},
		SecurityContext:          containerSecurity(),
		TerminationMessagePath:   corev1.TerminationMessagePathDefault,
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
	secretFile := func(secret, key, path string) corev1.VolumeProjection {
		return corev1.VolumeProjection{Secret: &corev1.SecretProjection{
			LocalObjectReference: corev1.LocalObjectReference{Name: secret},
			Items:                []corev1.KeyToPath{{Key: key, Path: path}},
		}}
	}
	optional := func(p corev1.VolumeProjection) corev1.VolumeProjection {
		p.Secret.Optional = ptr(true)
		return p
	}
	emptyDir := func(name string) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
	}
	spec := corev1.PodSpec{
		ServiceAccountName: n.StatefulSet(),
		// No automounted token (a year-long one under the API server's
		// default --service-account-extend-token-expiration, and in every
		// container): the postgres container alone mounts a projected
		// one of TokenExpirationSeconds (volAPIToken).
		AutomountServiceAccountToken:  ptr(false),
		TerminationGracePeriodSeconds: ptr(int64(c.Spec.StopDelay + stopMargin)),
		EnableServiceLinks:            ptr(false),
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:        ptr(true),
			RunAsUser:           ptr(uid),
			RunAsGroup:          ptr(uid),
			FSGroup:             ptr(uid),
			FSGroupChangePolicy: ptr(corev1.FSGroupChangeOnRootMismatch),
			SeccompProfile:      &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		InitContainers: []corev1.Container{bootstrap},
		Containers:     []corev1.Container{postgres},
		Volumes: []corev1.Volume{
			emptyDir(volController),
			emptyDir(volTmp),
			emptyDir(volRun),
			{Name: volParams, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: n.Params()},
				DefaultMode:          ptr(int32(0o444)),
			}}},
			// Owner root, group fsGroup (26), 0440: readable by postgres's
			// group only.
			{Name: volCredentials, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				DefaultMode: ptr(int32(0o440)),
				Sources: []corev1.VolumeProjection{
					// The user's or NAME-superuser, re-read by the
					// manager while it runs; neither exists while the
					// superuser has no access (podcontract/superuser.go).
					optional(secretFile(SuperuserSecretName(c), corev1.BasicAuthPasswordKey, "superuser-password")),
					// Only a cluster created before TLS has it.
					optional(secretFile(n.ReplicationSecret(), corev1.BasicAuthPasswordKey, "replication-password")),
					secretFile(AppSecretName(c), corev1.BasicAuthPasswordKey, "app-password"),
				},
			}}},
			{Name: volAPIToken, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				DefaultMode: ptr(int32(0o440)),
				Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token",
						ExpirationSeconds: ptr(int64(pc.TokenExpirationSeconds))}},
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
						Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
					{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace",
						FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
				},
			}}},
			// The cluster's CA, to issue the instance's certificates
			// from: as the credentials, group-readable only. Every
			// generation of it (the later ones optional until pgsync
			// rotates to them), so a new CA reaches the running pod.
			{Name: volCA, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				DefaultMode: ptr(int32(0o440)),
				Sources:     caGenerations(n),
			}}},
		},
		NodeSelector: c.Spec.Affinity.NodeSelector,
		Tolerations:  tolerations(c.Spec.Affinity.Tolerations),
		Affinity:     affinity(c),
	}
	applyPodSecurity(c, spec.SecurityContext)
	applyScheduling(c, &spec)
	mountRoleSecrets(c, &spec)
	mountPostInitSQL(c, &spec)
	mountMetricsQueries(c, &spec)
	mountUserCertificates(c, &spec)
	return spec, nil
}

// caGenerations projects each CA generation's two keys into its
// directory of the CA volume (pc.CAGenerationDir); all but the first are
// optional: they appear in the running pods when pgsync creates them.
func caGenerations(n pc.Names) []corev1.VolumeProjection {
	var out []corev1.VolumeProjection
	for gen := 1; gen <= pc.CAGenerations; gen++ {
		dir := pc.CAGenerationDir(gen)
		src := corev1.VolumeProjection{Secret: &corev1.SecretProjection{
			LocalObjectReference: corev1.LocalObjectReference{Name: n.CASecretOf(gen)},
			Items: []corev1.KeyToPath{{Key: pc.CACertKey, Path: path.Join(dir, pc.CACertKey)},
				{Key: pc.CAKeyKey, Path: path.Join(dir, pc.CAKeyKey)}},
		}}
		if gen > 1 {
			src.Secret.Optional = ptr(true)
		}
		out = append(out, src)
	}
	return out
}

func seconds(n int) time.Duration { return time.Duration(n) * time.Second }

func fieldEnv(name, path string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
		FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path}}}
}

func tolerations(ts []cluster.Toleration) []corev1.Toleration {
	var out []corev1.Toleration
	for _, t := range ts {
		ct := corev1.Toleration{Key: t.Key, Operator: corev1.TolerationOperator(t.Operator), Value: t.Value,
			Effect: corev1.TaintEffect(t.Effect)}
		if t.TolerationSeconds != nil {
			ct.TolerationSeconds = ptr(int64(*t.TolerationSeconds))
		}
		out = append(out, ct)
	}
	return out
}

// affinity spreads the instances over spec.affinity.topologyKey: preferred
// (weight 100) or required, as CloudNativePG.
func affinity(c *cluster.Cluster) *corev1.Affinity {
	a := c.Spec.Affinity
	if a.EnablePodAntiAffinity != nil && !*a.EnablePodAntiAffinity {
		return nil
	}
	key := a.TopologyKey
	if key == "" {
		key = cluster.DefaultTopologyKey
	}
	term := corev1.PodAffinityTerm{
		LabelSelector: &metav1.LabelSelector{MatchLabels: podSelector(c)},
		TopologyKey:   key,
	}
	anti := &corev1.PodAntiAffinity{}
	if a.PodAntiAffinityType == "required" {
		anti.RequiredDuringSchedulingIgnoredDuringExecution = []corev1.PodAffinityTerm{term}
	} else {
		anti.PreferredDuringSchedulingIgnoredDuringExecution = []corev1.WeightedPodAffinityTerm{{Weight: 100,
			PodAffinityTerm: term}}
	}
	return &corev1.Affinity{PodAntiAffinity: anti}
}

// leaseDuration is the cluster's pgsync.io/lease-duration, 0 when unset.
func leaseDuration(c *cluster.Cluster) time.Duration {
	r, _ := c.Rollout()
	return r.LeaseDuration
}
