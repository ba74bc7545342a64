// Package lifecycle runs a process's long-lived workers together and shuts its
// resources down in a fixed order under one deadline.
//
// A typical main wires it like this:
//
//	var sd lifecycle.Shutdown
//	sd.Add("telemetry", tel.Shutdown) // added first, closed last
//	sd.Add("postgres", func(context.Context) error { pool.Close(); return nil })
//	err := lifecycle.Run(ctx, grpcWorker, consumerWorker)
//	err = errors.Join(err, sd.Run(ctx, log, 15*time.Second))
package lifecycle
