package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/baton-proxy/baton/proxy/admin"
)

// defaultAdminURL is where `baton status` looks unless --admin or BATON_ADMIN says otherwise.
const defaultAdminURL = "http://127.0.0.1:9090"

func cmdStatus(args []string) error {
	fs := flag.NewFlagSet("status", flag.ExitOnError)
	url := fs.String("admin", envOr("BATON_ADMIN", defaultAdminURL), "admin server URL (env BATON_ADMIN)")
	token := fs.String("token", os.Getenv("BATON_ADMIN_TOKEN"), "admin bearer token (env BATON_ADMIN_TOKEN; prefer the variable: flags show in ps)")
	raw := fs.Bool("json", false, "print the API's JSON document instead of the table")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	fs.Parse(args)
	if fs.NArg() != 0 {
		return errors.New("usage: baton status [--admin URL] [--token T] [--json]")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	body, err := fetchClusters(ctx, *url, *token)
	if err != nil {
		return err
	}
	if *raw {
		_, err := os.Stdout.Write(body)
		return err
	}
	var doc admin.ClustersResponse
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Errorf("%s: not a baton admin API answer: %w", *url, err)
	}
	return admin.WriteTable(os.Stdout, &doc)
}

// fetchClusters GETs /api/v1/clusters from the admin server at base.
func fetchClusters(ctx context.Context, base, token string) ([]byte, error) {
	base = strings.TrimRight(base, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/clusters", nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the admin server: %w (is baton running? see admin.listen, --admin, BATON_ADMIN)", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", req.URL, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return nil, fmt.Errorf("%s: the admin server wants a token: pass --token or set BATON_ADMIN_TOKEN (401)", req.URL)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%s: %s: %s", req.URL, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
