package console

import (
	"bytes"
	"cmp"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

//go:embed web
var web embed.FS

// views renders the HTML pages from the templates of web/.
type views struct {
	pages  map[string]*template.Template
	static http.Handler
}

// page names, each a template web/<name>.html with web/layout.html.
var pageNames = []string{"topology", "lag", "poison", "group", "messages", "conversation", "error"}

func newViews() (*views, error) {
	funcs := template.FuncMap{
		"ago":       ago,
		"when":      when,
		"rfc3339":   func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
		"seconds":   seconds,
		"sparkline": sparkline,
		"convURL":   convURL,
		"groupURL":  func(g string) string { return "/poison/" + url.PathEscape(g) },
		"msgURL":    func(t string) string { return "/messages?topic=" + url.QueryEscape(t) },
		"join":      strings.Join,
	}
	v := &views{pages: map[string]*template.Template{}}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(web, "web/layout.html", "web/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console page %s: %w", name, err)
		}
		v.pages[name] = t
	}
	static, err := fs.Sub(web, "web/static")
	if err != nil {
		return nil, err
	}
	v.static = http.StripPrefix("/static/", http.FileServerFS(static))
	return v, nil
}

// pageData is what every page gets.
type pageData struct {
	Title     string
	Nav       string
	SampledAt time.Time
	Token     bool
	ReadOnly  bool
	Data      any
	Err       string
}

func (v *views) routes(mux *http.ServeMux, c *Console) {
	mux.Handle("GET /static/", v.static)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		s := c.current()
		top := s.topologyOrEmpty()
		v.render(w, c, "topology", "Topology", http.StatusOK, topologyPage{Topology: top, Graph: graph(top)})
	})
	mux.HandleFunc("GET /lag", func(w http.ResponseWriter, r *http.Request) {
		s := c.current()
		v.render(w, c, "lag", "Lag", http.StatusOK, Lag{SampledAt: s.at, Handlers: s.lag})
	})
	mux.HandleFunc("GET /poison", func(w http.ResponseWriter, r *http.Request) {
		gs, err := c.poisonGroups(r.Context())
		if err != nil {
			v.fail(w, c, http.StatusBadGateway, err)
			return
		}
		v.render(w, c, "poison", "Poison", http.StatusOK, gs)
	})
	mux.HandleFunc("GET /poison/{group}", func(w http.ResponseWriter, r *http.Request) {
		gm, err := c.groupMessages(r.Context(), r.PathValue("group"), maxLimit)
		switch {
		case errors.Is(err, errNoGroup):
			v.fail(w, c, http.StatusNotFound, err)
		case err != nil:
			v.fail(w, c, http.StatusBadRequest, err)
		default:
			v.render(w, c, "group", "Poison group "+gm.Group.Group, http.StatusOK, gm)
		}
	})
	mux.HandleFunc("GET /messages", func(w http.ResponseWriter, r *http.Request) {
		page := messagesPage{Query: r.URL.Query()}
		ts, err := c.topics(r.Context())
		if err != nil {
			v.fail(w, c, http.StatusBadGateway, err)
			return
		}
		page.Topics = ts.Topics
		status := http.StatusOK
		if topic := r.URL.Query().Get("topic"); topic != "" {
			b, err := parseBrowse(r, topic)
			if err == nil {
				var ms Messages
				ms, err = c.messages(r.Context(), b)
				page.Result = &ms
			}
			if err != nil {
				page.Result, page.Err, status = nil, err.Error(), http.StatusBadRequest
			}
		}
		v.render(w, c, "messages", "Messages", status, page)
	})
	mux.HandleFunc("GET /conversations/{correlation_id}", func(w http.ResponseWriter, r *http.Request) {
		id, at, window, err := parseConversation(r)
		if err != nil {
			v.fail(w, c, http.StatusBadRequest, err)
			return
		}
		conv, err := c.conversation(r.Context(), id, at, window)
		if err != nil {
			v.fail(w, c, http.StatusBadGateway, err)
			return
		}
		v.render(w, c, "conversation", "Conversation "+id, http.StatusOK, conv)
	})
	mux.HandleFunc("GET /conversations", func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimSpace(r.URL.Query().Get("id"))
		if id == "" {
			v.fail(w, c, http.StatusBadRequest, errors.New("give a correlation ID or a message ID"))
			return
		}
		http.Redirect(w, r, convURL(id, time.Time{}), http.StatusSeeOther)
	})
}

func (v *views) render(w http.ResponseWriter, c *Console, page, title string, status int, data any) {
	var b bytes.Buffer
	d := pageData{Title: title, Nav: page, SampledAt: c.current().at, Token: c.o.Token != "", ReadOnly: c.o.ReadOnly, Data: data}
	if page == "group" {
		d.Nav = "poison"
	}
	if err := v.pages[page].Execute(&b, d); err != nil {
		http.Error(w, "render "+page+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

func (v *views) fail(w http.ResponseWriter, c *Console, status int, err error) {
	v.render(w, c, "error", http.StatusText(status), status, err.Error())
}

type topologyPage struct {
	Topology
	Graph template.HTML
}

type messagesPage struct {
	Query  url.Values
	Topics []TopicInfo
	Result *Messages
	Err    string
}

func convURL(id string, at time.Time) string {
	u := "/conversations/" + url.PathEscape(id)
	if !at.IsZero() {
		u += "?at=" + url.QueryEscape(at.UTC().Format(time.RFC3339Nano))
	}
	return u
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := time.Since(t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return d.String() + " ago"
}

func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func seconds(s float64) string {
	if s <= 0 {
		return "0s"
	}
	return (time.Duration(s * float64(time.Second))).Round(100 * time.Millisecond).String()
}

// sparkline draws the lag history as an SVG polyline.
func sparkline(h []Point) template.HTML {
	const w, ht = 120.0, 24.0
	if len(h) == 0 {
		return ""
	}
	top := int64(1)
	for _, p := range h {
		top = max(top, p.Lag)
	}
	var pts []string
	for i, p := range h {
		x := w
		if len(h) > 1 {
			x = float64(i) * w / float64(len(h)-1)
		}
		y := ht - 2 - float64(p.Lag)*(ht-4)/float64(top)
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
	}
	return template.HTML(fmt.Sprintf(`<svg class="spark" viewBox="0 0 %g %g" width="%g" height="%g" role="img" aria-label="lag over the last %d samples, up to %d"><polyline points="%s"/></svg>`,
		w, ht, w, ht, len(h), top, strings.Join(pts, " ")))
}

// graph draws the topology as SVG: services on the left, then topics and
// handlers in layers (a topic before the handlers consuming it, a handler
// before the topic it publishes to).
func graph(t Topology) template.HTML {
	type node struct {
		id, label, kind, state, href string
		layer, row                   int
	}
	nodes := map[string]*node{}
	var edges [][2]string
	for _, s := range t.Services {
		nodes["s:"+s.Name] = &node{id: "s:" + s.Name, label: s.Name, kind: "service"}
		for _, h := range s.Handlers {
			hid := "h:" + s.Name + "." + h.Name
			nodes[hid] = &node{id: hid, label: h.Name, kind: "handler", state: cmp.Or(h.State, "unknown"), href: "/lag#" + h.ConsumerGroup}
			edges = append(edges, [2]string{"s:" + s.Name, hid}, [2]string{"t:" + h.Topic, hid})
			if h.PublishTopic != "" {
				edges = append(edges, [2]string{hid, "t:" + h.PublishTopic})
			}
		}
	}
	for _, tp := range t.Topics {
		nodes["t:"+tp.Name] = &node{id: "t:" + tp.Name, label: tp.Name, kind: "topic", href: "/messages?topic=" + url.QueryEscape(tp.Name)}
	}
	if len(nodes) == 0 {
		return template.HTML(`<p class="empty">No service has announced itself yet. Services built with eventfx announce themselves on the topic eventfx.services when they start.</p>`)
	}
	// Layers: services 0, topics and handlers from 1, each after what
	// feeds it (bounded, so a loop of topics cannot run forever).
	for _, n := range nodes {
		if n.kind != "service" {
			n.layer = 1
		}
	}
	for range len(nodes) {
		moved := false
		for _, e := range edges {
			a, b := nodes[e[0]], nodes[e[1]]
			if a.kind == "service" {
				continue
			}
			if b.layer <= a.layer && b.layer < len(nodes) {
				b.layer, moved = a.layer+1, true
			}
		}
		if !moved {
			break
		}
	}
	ids := make([]string, 0, len(nodes))
	for id := range nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	rows := map[int]int{}
	maxLayer, maxRow := 0, 0
	for _, id := range ids {
		n := nodes[id]
		n.row = rows[n.layer]
		rows[n.layer]++
		maxLayer, maxRow = max(maxLayer, n.layer), max(maxRow, n.row)
	}
	const colW, rowH, boxW, boxH = 230, 56, 180, 34
	x := func(n *node) int { return 10 + n.layer*colW }
	y := func(n *node) int { return 10 + n.row*rowH }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="graph" id="topology-graph" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="services, handlers and topics">`,
		(maxLayer+1)*colW, (maxRow+1)*rowH+10, (maxLayer+1)*colW, (maxRow+1)*rowH+10)
	b.WriteString(`<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z"/></marker></defs>`)
	for _, e := range edges {
		a, z := nodes[e[0]], nodes[e[1]]
		class := "edge"
		if a.kind == "service" {
			class = "edge runs"
		}
		fmt.Fprintf(&b, `<path class="%s" d="M %d %d C %d %d, %d %d, %d %d" marker-end="url(#arrow)"/>`, class,
			x(a)+boxW, y(a)+boxH/2, x(a)+boxW+30, y(a)+boxH/2, x(z)-30, y(z)+boxH/2, x(z), y(z)+boxH/2)
	}
	for _, id := range ids {
		n := nodes[id]
		label := template.HTMLEscapeString(n.label)
		title := template.HTMLEscapeString(n.kind + " " + n.label)
		if n.state != "" {
			title += " — " + template.HTMLEscapeString(n.state)
		}
		open, end := "", ""
		if n.href != "" {
			open, end = `<a href="`+template.HTMLEscapeString(n.href)+`">`, `</a>`
		}
		fmt.Fprintf(&b, `<g class="node %s state-%s" data-node="%s">%s<title>%s</title><rect x="%d" y="%d" width="%d" height="%d" rx="%d"/><text x="%d" y="%d">%s</text>%s</g>`,
			n.kind, template.HTMLEscapeString(n.state), template.HTMLEscapeString(n.id), open, title,
			x(n), y(n), boxW, boxH, map[string]int{"topic": 17, "service": 4, "handler": 8}[n.kind],
			x(n)+10, y(n)+boxH/2+5, label, end)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
