package observe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// maxStatusBytes bounds what is read of one /status document.
const maxStatusBytes = 1 << 20

// DirectStatus reads /status from the pod's IP: what pgsync running inside
// the cluster's network (the daemon, or a host of the local Kubernetes)
// uses. It needs no permission beyond reaching the pod.
type DirectStatus struct {
	Client *http.Client
	// Port is the manager's HTTP port (default podcontract.HTTPPort).
	Port int
}

// Status implements StatusReader.
func (d DirectStatus) Status(ctx context.Context, pod *corev1.Pod) (pc.Status, error) {
	if pod.Status.PodIP == "" {
		return pc.Status{}, errors.New("pod has no IP yet")
	}
	port := d.Port
	if port == 0 {
		port = pc.HTTPPort
	}
	client := d.Client
	if client == nil {
		client = http.DefaultClient
	}
	url := "http://" + net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(port)) + pc.PathStatus
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return pc.Status{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return pc.Status{}, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxStatusBytes))
	if err != nil {
		return pc.Status{}, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return pc.Status{}, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return decodeStatus(body)
}

// ProxyStatus reads /status through the API server's pod proxy: what a
// CLI outside the cluster's network uses. It needs `get` on pods/proxy.
type ProxyStatus struct {
	Client kubernetes.Interface
}

// Status implements StatusReader.
func (p ProxyStatus) Status(ctx context.Context, pod *corev1.Pod) (pc.Status, error) {
	body, err := p.Client.CoreV1().Pods(pod.Namespace).ProxyGet("http", pod.Name, strconv.Itoa(pc.HTTPPort), pc.PathStatus, nil).DoRaw(ctx)
	if err != nil {
		// client-go does not decode the API server's own refusal of a
		// proxy request ("address not allowed", no route to the pod) and
		// reports only an "unknown reason": say what the server said.
		var refusal metav1.Status
		if json.Unmarshal(body, &refusal) == nil && refusal.Kind == "Status" && refusal.Message != "" {
			err = fmt.Errorf("%s (HTTP %d): %w", refusal.Message, refusal.Code, err)
		}
		return pc.Status{}, fmt.Errorf("pod proxy %s/%s%s: %w", pod.Namespace, pod.Name, pc.PathStatus, err)
	}
	return decodeStatus(body)
}

func decodeStatus(body []byte) (pc.Status, error) {
	var st pc.Status
	if err := json.Unmarshal(body, &st); err != nil {
		return pc.Status{}, fmt.Errorf("decode status: %w", err)
	}
	return st, nil
}
