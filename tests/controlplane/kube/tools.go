//go:build tools

// Package tools pins the Kubernetes commands this wrapper module builds, so that
// `go mod tidy` keeps k8s.io/kubernetes and its dependencies in go.mod/go.sum.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	_ "k8s.io/kubernetes/cmd/kube-scheduler/app"
)
