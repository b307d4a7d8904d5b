// Package podrun runs the containers of a pod admitted by a (bare)
// kube-apiserver on this machine, standing in for the kubelet and the
// container runtime, so a test can run exactly what pgsync renders and
// nothing it does not: each container's command, args and environment as
// the pod spec says (fieldRef values resolved, the kubelet's
// KUBERNETES_SERVICE_* added); its volumes laid out as the kubelet lays
// them out (test/kubeletvol for ConfigMap, Secret and projected volumes,
// a service account token from the TokenRequest API) and mounted at the
// spec's paths, read-only where it says; the pod's own network namespace
// (its pod IP and the kubernetes Service address on lo, the latter relayed
// to the API server); per container a pid namespace (PID 1 is the
// container's process) and a mount namespace whose root is an overlay of
// this machine's root, standing in for the image, read-only when
// readOnlyRootFilesystem says so; and the security context's uid, gid,
// fsGroup, no capabilities and no_new_privs.
//
// A field it cannot honour is an error, not silently dropped. It needs
// root, unshare(1), nsenter(1), setpriv(1), chroot(8), ip(8) and overlayfs;
// Check says what is missing. Only tests import it.
//
// It must not import `internal/...`.
package podrun

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/pgsync/pgsync/test/kubeletvol"
)

// Check reports what this machine lacks to run pods, or "".
func Check() string {
	if os.Geteuid() != 0 {
		return "podrun needs root (namespaces, mounts, uid changes)"
	}
	for _, tool := range []string{"unshare", "nsenter", "setpriv", "chroot", "ip", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "podrun needs " + tool
		}
	}
	if b, err := os.ReadFile("/proc/filesystems"); err != nil || !strings.Contains(string(b), "\toverlay\n") {
		return "podrun needs overlayfs"
	}
	return ""
}

// Options say how to run a pod.
type Options struct {
	// Client reads the Secrets and ConfigMaps the volumes name and
	// requests service account tokens.
	Client kubernetes.Interface
	// APIServer is host:port of the API server; the pod reaches it at the
	// kubernetes Service's address (KUBERNETES_SERVICE_HOST).
	APIServer string
	// ServiceIP is the kubernetes Service's ClusterIP; CAData the API
	// server's CA (kube-root-ca.crt, which no controller publishes here).
	ServiceIP string
	CAData    []byte
	// PodIP is status.podIP.
	PodIP string
	// Images maps an image name to files it holds beyond this machine's
	// root (path in the image → file here), e.g. the pgsync image's
	// /pgsync. An image not listed is this machine's root as is.
	Images map[string]map[string]string
	// Dir holds the volumes, the overlay roots and the logs.
	Dir string
}

// Pod is one running pod: its network namespace and volumes.
type Pod struct {
	opts    Options
	pod     *corev1.Pod
	holder  *exec.Cmd // keeps the network namespace
	netns   string    // /proc/PID/ns/net of holder
	volumes map[string]string
	relay   net.Listener

	mu         sync.Mutex
	containers []*Container
}

// Container is one container's process.
type Container struct {
	Name string
	// Log has the container's stdout and stderr.
	Log  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start prepares pod p (as stored by the API server, admission included):
// its network namespace and every volume. Stop undoes it.
func Start(ctx context.Context, p *corev1.Pod, o Options) (*Pod, error) {
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	pod := &Pod{opts: o, pod: p.DeepCopy(), volumes: map[string]string{}}
	if err := pod.startNetwork(); err != nil {
		pod.Stop()
		return nil, err
	}
	for _, v := range p.Spec.Volumes {
		dir, err := pod.volume(ctx, v)
		if err != nil {
			pod.Stop()
			return nil, fmt.Errorf("volume %s: %w", v.Name, err)
		}
		pod.volumes[v.Name] = dir
	}
	return pod, nil
}

// startNetwork creates the pod's network namespace (a process that holds
// it, as the pause container does) with lo up, the pod IP and the
// kubernetes Service IP on it, and relays the Service to the API server.
func (p *Pod) startNetwork() error {
	script := `set -e; ip link set lo up; ip addr add "$1/32" dev lo; ip addr add "$2/32" dev lo; echo ready; exec sleep 1000000`
	cmd := exec.Command("unshare", "--net", "--", "sh", "-c", script, "sh", p.opts.PodIP, p.opts.ServiceIP)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	p.holder = cmd
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		return fmt.Errorf("pod network namespace: %q %v", line, err)
	}
	p.netns = fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid)
	ln, err := p.Listen("tcp", net.JoinHostPort(p.opts.ServiceIP, "443"))
	if err != nil {
		return fmt.Errorf("kubernetes Service relay: %w", err)
	}
	p.relay = ln
	go relay(ln, p.opts.APIServer)
	return nil
}

func relay(ln net.Listener, to string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			up, err := net.Dial("tcp", to)
			if err != nil {
				return
			}
			defer up.Close()
			go func() { _, _ = io.Copy(up, c); up.(*net.TCPConn).CloseWrite() }()
			_, _ = io.Copy(c, up)
		}()
	}
}

// inNetns runs f on an OS thread that has joined the pod's network
// namespace; the thread is discarded afterwards (a goroutine that ends
// locked takes its thread with it). Sockets created by f stay in the
// namespace.
func (p *Pod) inNetns(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open(p.netns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// Dial connects to addr from inside the pod's network namespace (to the
// pod IP or 127.0.0.1 there).
func (p *Pod) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := p.inNetns(func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Listen listens on addr inside the pod's network namespace.
func (p *Pod) Listen(network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := p.inNetns(func() error {
		var err error
		ln, err = net.Listen(network, addr)
		return err
	})
	return ln, err
}

func (p *Pod) fsGroup() *int64 {
	if sc := p.pod.Spec.SecurityContext; sc != nil {
		return sc.FSGroup
	}
	return nil
}

// volume lays out one volume and returns its directory.
func (p *Pod) volume(ctx context.Context, v corev1.Volume) (string, error) {
	dir := filepath.Join(p.opts.Dir, "volumes", v.Name)
	fsGroup := p.fsGroup()
	// Volumes belong to root and, with an fsGroup, to that group.
	owner := kubeletvol.Owner{UID: 0, GID: 0}
	if fsGroup != nil {
		owner.GID = int(*fsGroup)
	}
	ns := p.pod.Namespace
	switch {
	case v.EmptyDir != nil:
		if v.EmptyDir.Medium != "" || v.EmptyDir.SizeLimit != nil {
			return "", errors.New("emptyDir medium and sizeLimit are not supported")
		}
		return dir, mkdirOwned(dir, 0o777, owner, fsGroup != nil)
	case v.PersistentVolumeClaim != nil:
		// A fresh volume as a storage driver provisions it, owned by
		// fsGroup as the kubelet leaves it.
		return dir, mkdirOwned(dir, 0o770, owner, fsGroup != nil)
	case v.ConfigMap != nil:
		cm, err := p.opts.Client.CoreV1().ConfigMaps(ns).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		files, err := pick(v.ConfigMap.Items, stringData(cm.Data, cm.BinaryData))
		if err != nil {
			return "", err
		}
		return dir, kubeletvol.Write(dir, files, fileMode(v.ConfigMap.DefaultMode, 0o644, fsGroup), owner)
	case v.Secret != nil:
		s, err := p.opts.Client.CoreV1().Secrets(ns).Get(ctx, v.Secret.SecretName, metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		files, err := pick(v.Secret.Items, s.Data)
		if err != nil {
			return "", err
		}
		return dir, kubeletvol.Write(dir, files, fileMode(v.Secret.DefaultMode, 0o644, fsGroup), owner)
	case v.Projected != nil:
		files := map[string][]byte{}
		for _, src := range v.Projected.Sources {
			got, err := p.projection(ctx, src)
			if err != nil {
				return "", err
			}
			for k, b := range got {
				files[k] = b
			}
		}
		return dir, kubeletvol.Write(dir, files, fileMode(v.Projected.DefaultMode, 0o644, fsGroup), owner)
	}
	return "", errors.New("volume source not supported by podrun")
}

func (p *Pod) projection(ctx context.Context, src corev1.VolumeProjection) (map[string][]byte, error) {
	ns := p.pod.Namespace
	switch {
	case src.Secret != nil:
		s, err := p.opts.Client.CoreV1().Secrets(ns).Get(ctx, src.Secret.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) && src.Secret.Optional != nil && *src.Secret.Optional {
			return nil, nil // as the kubelet: an optional source that is missing adds no file
		}
		if err != nil {
			return nil, err
		}
		return pick(src.Secret.Items, s.Data)
	case src.ConfigMap != nil:
		cm, err := p.opts.Client.CoreV1().ConfigMaps(ns).Get(ctx, src.ConfigMap.Name, metav1.GetOptions{})
		data := map[string][]byte{}
		switch {
		case apierrors.IsNotFound(err) && src.ConfigMap.Name == "kube-root-ca.crt":
			// Published by kube-controller-manager, which does not run.
			data["ca.crt"] = p.opts.CAData
		case err != nil:
			return nil, err
		default:
			data = stringData(cm.Data, cm.BinaryData)
		}
		return pick(src.ConfigMap.Items, data)
	case src.DownwardAPI != nil:
		out := map[string][]byte{}
		for _, it := range src.DownwardAPI.Items {
			if it.FieldRef == nil {
				return nil, fmt.Errorf("downwardAPI %s: only fieldRef is supported", it.Path)
			}
			v, err := p.fieldRef(it.FieldRef.FieldPath)
			if err != nil {
				return nil, err
			}
			out[it.Path] = []byte(v)
		}
		return out, nil
	case src.ServiceAccountToken != nil:
		st := src.ServiceAccountToken
		req := &authv1.TokenRequest{Spec: authv1.TokenRequestSpec{
			ExpirationSeconds: st.ExpirationSeconds,
			BoundObjectRef:    &authv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: p.pod.Name, UID: p.pod.UID},
		}}
		if st.Audience != "" {
			req.Spec.Audiences = []string{st.Audience}
		}
		tr, err := p.opts.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, p.pod.Spec.ServiceAccountName, req, metav1.CreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("service account token: %w", err)
		}
		return map[string][]byte{st.Path: []byte(tr.Status.Token)}, nil
	}
	return nil, errors.New("projection source not supported by podrun")
}

func stringData(s map[string]string, b map[string][]byte) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range s {
		out[k] = []byte(v)
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// pick applies a volume's items (key → path) or takes every key.
func pick(items []corev1.KeyToPath, data map[string][]byte) (map[string][]byte, error) {
	if len(items) == 0 {
		return data, nil
	}
	out := map[string][]byte{}
	for _, it := range items {
		b, ok := data[it.Key]
		if !ok {
			return nil, fmt.Errorf("key %q not found", it.Key)
		}
		// A nested path is written as the kubelet does (kubeletvol).
		if it.Mode != nil {
			return nil, fmt.Errorf("item %s: per-item modes are not supported", it.Key)
		}
		out[it.Path] = b
	}
	return out, nil
}

// fileMode is a volume's file mode; with an fsGroup the kubelet makes the
// files readable by the group.
func fileMode(m *int32, def os.FileMode, fsGroup *int64) os.FileMode {
	mode := def
	if m != nil {
		mode = os.FileMode(*m)
	}
	if fsGroup != nil {
		mode |= 0o040
	}
	return mode
}

func mkdirOwned(dir string, mode os.FileMode, o kubeletvol.Owner, setgid bool) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chown(dir, o.UID, o.GID); err != nil {
		return err
	}
	if setgid {
		mode |= os.ModeSetgid
	}
	return os.Chmod(dir, mode)
}

func (p *Pod) fieldRef(fp string) (string, error) {
	switch fp {
	case "metadata.name":
		return p.pod.Name, nil
	case "metadata.namespace":
		return p.pod.Namespace, nil
	case "status.podIP":
		return p.opts.PodIP, nil
	case "spec.serviceAccountName":
		return p.pod.Spec.ServiceAccountName, nil
	}
	return "", fmt.Errorf("fieldRef %s is not supported by podrun", fp)
}

// env is the container's environment as the kubelet builds it.
func (p *Pod) env(c corev1.Container) ([]string, error) {
	if len(c.EnvFrom) > 0 {
		return nil, errors.New("envFrom is not supported by podrun")
	}
	out := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOSTNAME=" + p.pod.Name,
		"KUBERNETES_SERVICE_HOST=" + p.opts.ServiceIP,
		"KUBERNETES_SERVICE_PORT=443",
		"KUBERNETES_SERVICE_PORT_HTTPS=443",
	}
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil {
			if e.ValueFrom.FieldRef == nil {
				return nil, fmt.Errorf("env %s: only fieldRef is supported by podrun", e.Name)
			}
			var err error
			if v, err = p.fieldRef(e.ValueFrom.FieldRef.FieldPath); err != nil {
				return nil, fmt.Errorf("env %s: %w", e.Name, err)
			}
		}
		out = append(out, e.Name+"="+v)
	}
	return out, nil
}

// bind is one mount of a container: src (here) at dst (in the container,
// no symlinks left).
type bind struct {
	src, dst string
	ro, file bool
}

// containerSpec finds container name among init and regular containers.
func (p *Pod) containerSpec(name string) (corev1.Container, error) {
	for _, c := range append(append([]corev1.Container{}, p.pod.Spec.InitContainers...), p.pod.Spec.Containers...) {
		if c.Name == name {
			return c, nil
		}
	}
	return corev1.Container{}, fmt.Errorf("pod %s has no container %s", p.pod.Name, name)
}

// mounts resolves the container's volume mounts and the image's extra
// files, parents first.
func (p *Pod) mounts(c corev1.Container) ([]bind, error) {
	var out []bind
	// Resolved in the image first; then again, not following symlinks
	// into another mount (whose content is the volume's, not the image's).
	var first []string
	for _, m := range c.VolumeMounts {
		first = append(first, resolveIn(m.MountPath, nil))
	}
	others := func(i int) []string { return slices.Delete(slices.Clone(first), i, i+1) }
	for i, m := range c.VolumeMounts {
		src, ok := p.volumes[m.Name]
		if !ok {
			return nil, fmt.Errorf("mount %s: no volume %s", m.MountPath, m.Name)
		}
		if m.SubPath != "" || m.SubPathExpr != "" || m.MountPropagation != nil {
			return nil, fmt.Errorf("mount %s: subPath and propagation are not supported", m.MountPath)
		}
		out = append(out, bind{src: src, dst: resolveIn(m.MountPath, others(i)), ro: m.ReadOnly})
	}
	for inImage, here := range p.opts.Images[c.Image] {
		out = append(out, bind{src: here, dst: resolveIn(inImage, first), ro: true, file: true})
	}
	slices.SortStableFunc(out, func(a, b bind) int { return strings.Count(a.dst, "/") - strings.Count(b.dst, "/") })
	return out, nil
}

// resolveIn resolves the symlinks of p as the runtime does, inside the
// image (this machine's root), up to the first component that lies in an
// earlier mount (mounts) or does not exist: e.g. /var/run/secrets is
// /run/secrets on Debian.
func resolveIn(p string, mounts []string) string {
	parts := strings.Split(strings.Trim(path.Clean(p), "/"), "/")
	cur := "/"
	for i := 0; i < len(parts); i++ {
		next := path.Join(cur, parts[i])
		if slices.Contains(mounts, cur) || slices.ContainsFunc(mounts, func(m string) bool { return strings.HasPrefix(cur, m+"/") }) {
			cur = next
			continue
		}
		target, err := os.Readlink(next)
		if err != nil {
			cur = next
			continue
		}
		if !path.IsAbs(target) {
			target = path.Join(cur, target)
		}
		rest := append(strings.Split(strings.Trim(path.Clean(target), "/"), "/"), parts[i+1:]...)
		parts, i, cur = rest, -1, "/"
	}
	return cur
}

// containerScript runs as root in the container's fresh mount and pid
// namespaces (joined to the pod's network namespace): the overlay root
// (upper layer in a tmpfs that dies with the namespace), /dev with its own
// /dev/shm, /proc of the pid namespace, the user entries the image would
// have, the volumes, a read-only root if asked, then the process as the
// container's user with no capabilities.
const containerScript = `set -eu
root=$1 scratch=$2 binds=$3 ro=$4 passwd=$5; shift 5
mount -t tmpfs tmpfs "$scratch"
mkdir "$scratch/upper" "$scratch/work"
mount -t overlay overlay -o "lowerdir=/,upperdir=$scratch/upper,workdir=$scratch/work" "$root"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o size=64m,mode=1777,nosuid,nodev shm "$root/dev/shm"
mount -t proc proc "$root/proc"
if [ -n "$passwd" ]; then printf '%s\n' "$passwd" >> "$root/etc/passwd"; fi
while IFS='	' read -r kind src dst mode; do
	if [ "$kind" = file ]; then mkdir -p "$root$(dirname "$dst")"; touch "$root$dst"; else mkdir -p "$root$dst"; fi
	mount --bind "$src" "$root$dst"
	if [ "$mode" = ro ]; then mount -o remount,bind,ro "$root$dst"; fi
done < "$binds"
if [ "$ro" = ro ]; then mount -o remount,bind,ro "$root"; fi
exec chroot "$root" "$@"
`

// RunInit runs init container name to completion.
func (p *Pod) RunInit(ctx context.Context, name string) error {
	c, err := p.StartContainer(ctx, name)
	if err != nil {
		return err
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		_ = c.Signal(syscall.SIGKILL)
		<-c.done
	}
	if c.err != nil {
		log, _ := os.ReadFile(c.Log)
		return fmt.Errorf("init container %s: %w\n%s", name, c.err, log)
	}
	return nil
}

// StartContainer starts container name.
func (p *Pod) StartContainer(ctx context.Context, name string) (*Container, error) {
	spec, err := p.containerSpec(name)
	if err != nil {
		return nil, err
	}
	user, err := p.user(spec)
	if err != nil {
		return nil, err
	}
	env, err := p.env(spec)
	if err != nil {
		return nil, err
	}
	binds, err := p.mounts(spec)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(p.opts.Dir, "containers", name)
	for _, d := range []string{"root", "scratch"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	var table strings.Builder
	for _, b := range binds {
		kind, mode := "dir", "rw"
		if b.file {
			kind = "file"
		}
		if b.ro {
			mode = "ro"
		}
		fmt.Fprintf(&table, "%s\t%s\t%s\t%s\n", kind, b.src, b.dst, mode)
	}
	bindsFile := filepath.Join(dir, "binds")
	if err := os.WriteFile(bindsFile, []byte(table.String()), 0o644); err != nil {
		return nil, err
	}
	rootRO := "rw"
	if spec.SecurityContext != nil && spec.SecurityContext.ReadOnlyRootFilesystem != nil && *spec.SecurityContext.ReadOnlyRootFilesystem {
		rootRO = "ro"
	}
	argv := append(append([]string{}, spec.Command...), spec.Args...)
	if len(argv) == 0 {
		return nil, fmt.Errorf("container %s: no command (an image's entrypoint is not known here)", name)
	}
	logPath := filepath.Join(p.opts.Dir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	args := []string{"--net=" + p.netns, "--", "unshare", "--mount", "--pid", "--fork", "--propagation", "private", "--",
		"sh", "-c", containerScript, "sh", filepath.Join(dir, "root"), filepath.Join(dir, "scratch"), bindsFile, rootRO, user.passwd}
	args = append(append(args, user.setpriv()...), argv...)
	cmd := exec.Command("nsenter", args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &Container{Name: name, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() { c.err = cmd.Wait(); close(c.done) }()
	p.mu.Lock()
	p.containers = append(p.containers, c)
	p.mu.Unlock()
	return c, nil
}

// identity is who a container's process runs as.
type identity struct {
	uid, gid int64
	groups   []int64
	noNewPriv,
	dropAll bool
	passwd string // lines for /etc/passwd when the image lacks the user
}

func (id identity) setpriv() []string {
	groups := make([]string, len(id.groups))
	for i, g := range id.groups {
		groups[i] = strconv.FormatInt(g, 10)
	}
	args := []string{"/usr/bin/setpriv", "--reuid=" + strconv.FormatInt(id.uid, 10), "--regid=" + strconv.FormatInt(id.gid, 10)}
	if len(groups) > 0 {
		args = append(args, "--groups="+strings.Join(groups, ","))
	} else {
		args = append(args, "--clear-groups")
	}
	if id.dropAll {
		args = append(args, "--inh-caps=-all", "--bounding-set=-all")
	}
	if id.noNewPriv {
		args = append(args, "--no-new-privs")
	}
	return append(args, "--")
}

// user applies the pod's and the container's security contexts.
func (p *Pod) user(c corev1.Container) (identity, error) {
	var id identity
	psc := p.pod.Spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	csc := c.SecurityContext
	if csc == nil {
		csc = &corev1.SecurityContext{}
	}
	uid, gid := psc.RunAsUser, psc.RunAsGroup
	if csc.RunAsUser != nil {
		uid = csc.RunAsUser
	}
	if csc.RunAsGroup != nil {
		gid = csc.RunAsGroup
	}
	if uid == nil || gid == nil {
		return id, errors.New("runAsUser and runAsGroup are required (an image's USER is not known here)")
	}
	id.uid, id.gid = *uid, *gid
	if psc.FSGroup != nil {
		id.groups = append(id.groups, *psc.FSGroup)
	}
	id.groups = append(id.groups, psc.SupplementalGroups...)
	if csc.Capabilities != nil {
		if len(csc.Capabilities.Add) > 0 {
			return id, errors.New("added capabilities are not supported by podrun")
		}
		id.dropAll = slices.Contains(csc.Capabilities.Drop, "ALL")
	}
	if id.uid != 0 && !id.dropAll {
		return id, errors.New("a non-root container must drop ALL capabilities here (others are not modelled)")
	}
	id.noNewPriv = csc.AllowPrivilegeEscalation != nil && !*csc.AllowPrivilegeEscalation
	if _, err := lookupUID(id.uid); err != nil {
		id.passwd = fmt.Sprintf("pod-%d:x:%d:%d:pod user:/nonexistent:/usr/sbin/nologin", id.uid, id.uid, id.gid)
	}
	return id, nil
}

func lookupUID(uid int64) (string, error) {
	b, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Split(line, ":"); len(f) > 3 && f[2] == strconv.FormatInt(uid, 10) {
			return f[0], nil
		}
	}
	return "", fmt.Errorf("uid %d not in /etc/passwd", uid)
}

// PID is the container's PID 1 as seen from here (0 before it exists).
func (c *Container) PID() int {
	// nsenter execs unshare, which forks the namespace's PID 1.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", c.cmd.Process.Pid, c.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	pid, _ := strconv.Atoi(f[0])
	return pid
}

// Signal sends sig to the container's PID 1.
func (c *Container) Signal(sig syscall.Signal) error {
	pid := c.PID()
	if pid == 0 {
		return errors.New("container process not found")
	}
	return syscall.Kill(pid, sig)
}

// Done is closed when the container has exited.
func (c *Container) Done() <-chan struct{} { return c.done }

// Exec runs argv in the container (its namespaces, root and user), as the
// kubelet runs a lifecycle hook, and returns its combined output.
func (p *Pod) Exec(ctx context.Context, c *Container, argv ...string) ([]byte, error) {
	spec, err := p.containerSpec(c.Name)
	if err != nil {
		return nil, err
	}
	id, err := p.user(spec)
	if err != nil {
		return nil, err
	}
	pid := c.PID()
	if pid == 0 {
		return nil, errors.New("container process not found")
	}
	env, err := p.env(spec)
	if err != nil {
		return nil, err
	}
	args := append([]string{"--target", strconv.Itoa(pid), "--mount", "--pid", "--net", "--root", "--wd=/", "--"}, id.setpriv()...)
	cmd := exec.CommandContext(ctx, "nsenter", append(args, argv...)...)
	cmd.Env = env
	return cmd.CombinedOutput()
}

// Stop kills every container and the network namespace's holder.
func (p *Pod) Stop() {
	p.mu.Lock()
	cs := p.containers
	p.mu.Unlock()
	for _, c := range cs {
		select {
		case <-c.done:
			continue
		default:
		}
		_ = c.Signal(syscall.SIGKILL) // the pid namespace ends with its PID 1
		select {
		case <-c.done:
		case <-time.After(30 * time.Second):
		}
	}
	if p.relay != nil {
		p.relay.Close()
	}
	if p.holder != nil {
		_ = p.holder.Process.Kill()
		_ = p.holder.Wait()
	}
}
