package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/baton-proxy/baton/proxy"
	"github.com/baton-proxy/baton/topology"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ErrDisabled is returned by Start when the configuration disables the admin server.
var ErrDisabled = errors.New("admin: disabled (admin.listen is empty or off)")

// Server is the admin HTTP server of one baton instance. Start it once; Shutdown stops it and
// waits for its goroutine. Methods are safe for concurrent use.
type Server struct {
	inst  *proxy.Instance
	cfg   topology.Admin
	log   *slog.Logger
	token [sha256.Size]byte // SHA-256 of the bearer token when auth is set
	auth  bool

	draining atomic.Bool

	mu   sync.Mutex
	ln   net.Listener
	srv  *http.Server
	done chan struct{} // closed when Serve returned
}

// New builds the admin server for inst. Nothing listens until Start.
func New(inst *proxy.Instance, cfg topology.Admin, log *slog.Logger) *Server {
	s := &Server{inst: inst, cfg: cfg, log: log}
	if tok := cfg.Token.Reveal(); tok != "" {
		s.token, s.auth = sha256.Sum256([]byte(tok)), true
	}
	return s
}

// Handler returns the server's HTTP handler (with the token check); Start serves it.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.authed(promhttp.HandlerFor(newRegistry(s.inst), promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /readyz", s.authed(http.HandlerFunc(s.readyz)))
	mux.Handle("GET /api/v1/clusters", s.authed(http.HandlerFunc(s.clusters)))
	mux.Handle("GET /api/v1/clusters/{name}", s.authed(http.HandlerFunc(s.cluster)))
	mux.Handle("POST /api/v1/clusters/{name}/switchover", s.authed(http.HandlerFunc(s.request("switchover"))))
	mux.Handle("POST /api/v1/clusters/{name}/failover", s.authed(http.HandlerFunc(s.request("failover"))))
	mux.Handle("POST /api/v1/clusters/{name}/rejoin", s.authed(http.HandlerFunc(s.request("rejoin"))))
	mux.Handle("POST /api/v1/clusters/{name}/pause", s.authed(http.HandlerFunc(s.pause(true))))
	mux.Handle("POST /api/v1/clusters/{name}/resume", s.authed(http.HandlerFunc(s.pause(false))))
	return mux
}

// Start binds the configured address and serves in the background until Shutdown.
func (s *Server) Start() error {
	if !s.cfg.Enabled() {
		return ErrDisabled
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return errors.New("admin: already started")
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	done := make(chan struct{})
	s.ln, s.srv, s.done = ln, srv, done
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin server stopped", "error", err)
		}
	}()
	s.log.Info("admin listening", "url", "http://"+ln.Addr().String(), "token", s.auth)
	return nil
}

// Addr is the bound address, or nil before Start.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// URL is the server's base URL ("http://127.0.0.1:9090"), or "" before Start.
func (s *Server) URL() string {
	if a := s.Addr(); a != nil {
		return "http://" + a.String()
	}
	return ""
}

// MarkDraining makes /readyz answer 503 from now on: call it when the proxy starts shutting
// down so load balancers stop sending clients.
func (s *Server) MarkDraining() { s.draining.Store(true) }

// Shutdown stops accepting, lets running requests finish until ctx ends, then closes the rest.
// It returns once the serving goroutine has exited. Shutdown before Start is a no-op.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv, done := s.srv, s.done
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		srv.Close()
	}
	<-done
	return err
}

// authed requires the bearer token when one is configured.
func (s *Server) authed(h http.Handler) http.Handler {
	if !s.auth {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
		if !ok || subtle.ConstantTimeCompare(sum[:], s.token[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="baton"`)
			writeJSON(w, http.StatusUnauthorized, errorBody{Error: "missing or wrong token: send Authorization: Bearer TOKEN (admin.token)"})
			return
		}
		h.ServeHTTP(w, r)
	})
}

type errorBody struct {
	Error string `json:"error"`
}

// readyBody is the /readyz document.
type readyBody struct {
	Ready  bool   `json:"ready"`
	Reason string `json:"reason,omitempty"`
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, readyBody{Reason: "shutting down"})
		return
	}
	var missing []string
	for _, c := range s.inst.Clusters() {
		if c.Live.Load().PrimaryNode() == nil {
			missing = append(missing, c.Config.Name)
		}
	}
	if len(missing) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, readyBody{Reason: "no primary known for cluster " + strings.Join(missing, ", ")})
		return
	}
	writeJSON(w, http.StatusOK, readyBody{Ready: true})
}

func (s *Server) clusters(w http.ResponseWriter, r *http.Request) {
	doc := ClustersResponse{Clusters: statuses(s.inst)}
	for i := range doc.Clusters {
		addShared(r.Context(), s.inst, &doc.Clusters[i])
	}
	writeJSON(w, http.StatusOK, doc)
}

// requestTimeout bounds how long an operator's request waits for the coordinator.
const requestTimeout = 3 * time.Minute

// request hands an operator's order (switchover, failover, rejoin) to the cluster's
// coordinator through etcd and answers with its result: 200 when done, 409 when refused or
// failed, 503 without etcd or when no coordinator answers in time. Query parameters: to (node),
// node (rejoin), force=true (failover).
func (s *Server) request(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		found := false
		for _, c := range s.inst.Clusters() {
			found = found || c.Config.Name == name
		}
		if !found {
			writeJSON(w, http.StatusNotFound, errorBody{Error: fmt.Sprintf("no cluster %q", name)})
			return
		}
		st := s.inst.Store()
		if st == nil {
			writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "etcd is off (etcd.off: true): there is no coordinator to run " + kind})
			return
		}
		q := r.URL.Query()
		req := topology.Request{Kind: kind, To: q.Get("to"), Node: q.Get("node"), Force: q.Get("force") == "true"}
		if kind == "rejoin" && req.Node == "" {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: "rejoin needs ?node=NAME"})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
		defer cancel()
		http.NewResponseController(w).SetWriteDeadline(time.Now().Add(requestTimeout + 5*time.Second))
		s.log.Info("operator request", "cluster", name, "kind", kind, "to", req.To, "node", req.Node, "force", req.Force, "remote", r.RemoteAddr)
		res, err := st.Submit(ctx, name, req)
		switch {
		case err != nil:
			writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: err.Error()})
		case !res.OK:
			writeJSON(w, http.StatusConflict, res)
		default:
			writeJSON(w, http.StatusOK, res)
		}
	}
}

// pause suspends (on) or resumes automatic failover of a cluster: a key in etcd, so every
// instance and the coordinator see it. Query parameter reason (pause). It answers like request:
// 200 with a topology.Result.
func (s *Server) pause(on bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		var c *proxy.Cluster
		for _, x := range s.inst.Clusters() {
			if x.Config.Name == name {
				c = x
			}
		}
		if c == nil {
			writeJSON(w, http.StatusNotFound, errorBody{Error: fmt.Sprintf("no cluster %q", name)})
			return
		}
		st := s.inst.Store()
		if st == nil {
			writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "etcd is off (etcd.off: true): there is no automatic failover to pause"})
			return
		}
		var p *topology.Pause
		if on {
			p = &topology.Pause{By: st.Instance() + " (" + r.RemoteAddr + ")", Since: time.Now().UTC(), Reason: r.URL.Query().Get("reason")}
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := st.SetPaused(ctx, name, p); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: err.Error()})
			return
		}
		s.log.Warn("automatic failover "+map[bool]string{true: "paused", false: "resumed"}[on], "cluster", name, "remote", r.RemoteAddr, "reason", r.URL.Query().Get("reason"))
		res := topology.Result{OK: true}
		if cst, ok := c.State(); ok {
			res.Epoch, res.Primary = cst.Epoch, cst.Primary
		}
		writeJSON(w, http.StatusOK, res)
	}
}

func (s *Server) cluster(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	for _, c := range s.inst.Clusters() {
		if c.Config.Name == name {
			cs := clusterStatus(c)
			addShared(r.Context(), s.inst, &cs)
			writeJSON(w, http.StatusOK, cs)
			return
		}
	}
	writeJSON(w, http.StatusNotFound, errorBody{Error: fmt.Sprintf("no cluster %q", name)})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
