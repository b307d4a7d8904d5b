# Instance manager (internal/instance) and the switchover benchmark.
# Both need PostgreSQL server binaries (Debian: postgresql-15), a `postgres`
# OS user when run as root, etcd, and the cached kube-apiserver of
# test/kubeenv (`make kube-api-bins`).

.PHONY: test-instance bench-switchover

test-instance:
	$(GO) test -race -count=1 -timeout 20m ./internal/instance/...

bench-switchover:
	$(GO) test -run '^$$' -bench Switchover -benchtime=1x -count=1 -timeout 30m ./bench/switchover
