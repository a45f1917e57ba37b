// Renders one Argo CD notification template body the way Argo CD's notifications engine does:
// Go's text/template, with the Application as `.app` (an unstructured object, as the engine
// passes it) and `.repo.GetCommitMetadata` returning Argo CD's CommitMetadata.
//
// Usage: go run render.go <template file> <application JSON file> <commit date, RFC 3339>
// Prints the rendered body; a template that does not parse or execute exits 1 with the error.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/template"
	"time"
)

// The fields of Argo CD's shared.CommitMetadata.
type CommitMetadata struct {
	Message string
	Author  string
	Date    time.Time
	Tags    []string
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: render <template file> <application JSON file> <commit date>")
		os.Exit(2)
	}
	source, err := os.ReadFile(os.Args[1])
	fail(err)
	raw, err := os.ReadFile(os.Args[2])
	fail(err)
	var app map[string]interface{}
	fail(json.Unmarshal(raw, &app))
	date, err := time.Parse(time.RFC3339, os.Args[3])
	fail(err)
	vars := map[string]interface{}{
		"app": app,
		"repo": map[string]interface{}{
			"GetCommitMetadata": func(sha string) interface{} {
				return CommitMetadata{Message: "deploy " + sha, Author: "ana", Date: date}
			},
		},
	}
	tmpl, err := template.New("body").Parse(string(source))
	fail(err)
	fail(tmpl.Execute(os.Stdout, vars))
}

func fail(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
