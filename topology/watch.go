package topology

import (
	"context"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch calls onChange with the newly loaded configuration whenever the file at path changes,
// and onError when a changed file does not load (the caller keeps its running configuration).
// It watches the directory, not the file: editors replace files by rename. Changes are
// debounced for 100 ms. It returns when ctx ends.
func Watch(ctx context.Context, path string, onChange func(*Config), onError func(error)) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	if err := w.Add(filepath.Dir(abs)); err != nil {
		return err
	}
	var timer *time.Timer
	fire := make(chan struct{}, 1)
	for {
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if filepath.Clean(ev.Name) != abs || ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) == 0 {
				continue
			}
			if timer != nil {
				timer.Stop()
			}
			timer = time.AfterFunc(100*time.Millisecond, func() {
				select {
				case fire <- struct{}{}:
				default:
				}
			})
		case <-fire:
			cfg, err := Load(path)
			if err != nil {
				onError(err)
				continue
			}
			onChange(cfg)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			onError(err)
		}
	}
}
