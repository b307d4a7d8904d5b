// Package clusterfile writes the Cluster files that tests and benchmarks
// run against the local Kubernetes: small instances of the images `make
// kube-up` serves, on the standard storage class. One shape for every
// caller, so a change to what the e2e tier and the benchmarks deploy is
// made once.
//
// It must not import `pgsync/...`.
package clusterfile

import (
	"fmt"
	"sort"
	"strings"
)

// Cluster is what differs between the files.
type Cluster struct {
	// APIVersion defaults to EDB's postgresql.k8s.enterprisedb.io/v1.
	APIVersion      string
	Name, Namespace string
	Image           string
	Instances       int
	// Description, when set, is spec.description.
	Description string
	// Parameters are added to the fixed ones (max_connections 50,
	// shared_buffers 32MB).
	Parameters map[string]string
	// Extra is appended to the spec as it is (indented spec fields).
	Extra string
	// Annotations are the file's metadata.annotations.
	Annotations map[string]string
	// NoSuperuserAccess leaves spec.enableSuperuserAccess out (its
	// default, false: no superuser password, no remote superuser login).
	// Otherwise it is true, so that tests and benchmarks can inspect the
	// cluster as the superuser with NAME-superuser's password.
	NoSuperuserAccess bool
}

// YAML is the Cluster file.
func (c Cluster) YAML() string {
	api := c.APIVersion
	if api == "" {
		api = "postgresql.k8s.enterprisedb.io/v1"
	}
	description := ""
	if c.Description != "" {
		description = fmt.Sprintf("  description: %q\n", c.Description)
	}
	var params strings.Builder
	names := make([]string, 0, len(c.Parameters))
	for name := range c.Parameters {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(&params, "      %s: %q\n", name, c.Parameters[name])
	}
	var annotations strings.Builder
	keys := make([]string, 0, len(c.Annotations))
	for k := range c.Annotations {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) > 0 {
		annotations.WriteString("  annotations:\n")
	}
	for _, k := range keys {
		fmt.Fprintf(&annotations, "    %s: %q\n", k, c.Annotations[k])
	}
	superuser := "  enableSuperuserAccess: true\n"
	if c.NoSuperuserAccess {
		superuser = ""
	}
	return fmt.Sprintf(`apiVersion: %s
kind: Cluster
metadata:
  name: %s
  namespace: %s
%sspec:
%s  imageName: %s
  instances: %d
  startDelay: 300
  stopDelay: 15
  storage:
    storageClass: standard
    size: 1Gi
  postgresql:
    parameters:
      max_connections: "50"
      shared_buffers: 32MB
%s  resources:
    requests: {cpu: 50m, memory: 128Mi}
%s%s`, api, c.Name, c.Namespace, annotations.String(), description, c.Image, c.Instances, params.String(), superuser, c.Extra)
}
