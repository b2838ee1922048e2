// Command etcd is etcd's own server main, built from go.etcd.io/etcd/server/v3
// as a dependency (etcd's main module cannot be `go install`ed: its replace
// directives are ignored there).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
