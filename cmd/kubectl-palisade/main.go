// Command kubectl-palisade is the `kubectl palisade` plugin: put it on the PATH (go install
// ./cmd/kubectl-palisade) and kubectl finds it.
package main

import (
	"fmt"
	"os"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/palisade-fw/palisade/internal/plugin"
)

func main() {
	cmd := plugin.NewRootCommand(genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
