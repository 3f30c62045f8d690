// Command kubelet-harness stands in for the kubelet of one simulated node.
//
// No container runtime exists on the test machines (and the kubelet refuses cgroup v1), so this
// harness drives only the kubelet parts a DRA driver talks to, using the kubelet's own packages:
// the plugin manager watches a plugins_registry directory and registers plugins exactly as the
// kubelet does, and the kubelet's DRA manager calls NodePrepareResources and
// NodeUnprepareResources. Pods bound to the node are reported Running once their claims are
// prepared; on deletion their claims are unprepared before the pod object is removed. Device health
// from the plugins' health streams is written into the containers' allocatedResourcesStatus.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	pluginregistration "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
	"k8s.io/kubernetes/pkg/kubelet/cm/dra"
	"k8s.io/kubernetes/pkg/kubelet/config"
	"k8s.io/kubernetes/pkg/kubelet/pluginmanager"
)

type options struct {
	kubeconfig   string
	nodeName     string
	registryDir  string
	stateDir     string
	featureGates string
}

func main() {
	var opts options
	flag.StringVar(&opts.kubeconfig, "kubeconfig", "", "kubeconfig of the API server")
	flag.StringVar(&opts.nodeName, "node-name", "", "name of the simulated node")
	flag.StringVar(&opts.registryDir, "plugins-registry", "", "directory watched for plugin registration sockets")
	flag.StringVar(&opts.stateDir, "state-dir", "", "directory for the DRA manager checkpoint and the ready marker")
	flag.StringVar(&opts.featureGates, "feature-gates", "", "kubelet feature gates, k=v,k=v")
	klog.InitFlags(nil)
	flag.Parse()
	if opts.kubeconfig == "" || opts.nodeName == "" || opts.registryDir == "" || opts.stateDir == "" {
		fmt.Fprintln(os.Stderr, "kubelet-harness: --kubeconfig, --node-name, --plugins-registry and --state-dir are required")
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	if err := run(ctx, opts); err != nil {
		klog.ErrorS(err, "kubelet-harness failed")
		os.Exit(1)
	}
}

func run(ctx context.Context, opts options) error {
	logger := klog.FromContext(ctx).WithValues("node", opts.nodeName)
	ctx = klog.NewContext(ctx, logger)
	if opts.featureGates != "" {
		if err := utilfeature.DefaultMutableFeatureGate.Set(opts.featureGates); err != nil {
			return fmt.Errorf("feature gates: %w", err)
		}
	}
	for _, dir := range []string{opts.registryDir, opts.stateDir} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return err
		}
	}
	restConfig, err := clientcmd.BuildConfigFromFlags("", opts.kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	restConfig.UserAgent = "kubelet-harness/" + opts.nodeName
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return err
	}

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: "kubelet", Host: opts.nodeName})

	factory := informers.NewSharedInformerFactoryWithOptions(client, 10*time.Minute,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = "spec.nodeName=" + opts.nodeName
		}))
	podInformer := factory.Core().V1().Pods()
	pods := newPodWorker(client, podInformer, recorder, opts.nodeName)

	draManager, err := dra.NewManager(logger, client, opts.stateDir)
	if err != nil {
		return fmt.Errorf("DRA manager: %w", err)
	}
	pods.dra = draManager
	getNode := func(ctx context.Context) (*v1.Node, error) {
		return client.CoreV1().Nodes().Get(ctx, opts.nodeName, metav1.GetOptions{})
	}
	// Like the kubelet, only reconcile orphaned claims once the API server source has been seen.
	sourcesReady := config.NewSourcesReady(func(seen sets.Set[string]) bool { return seen.Has("api") })
	sourcesReady.AddSource("api")
	if err := draManager.Start(ctx, pods.activePods, getNode, sourcesReady); err != nil {
		return fmt.Errorf("DRA manager start: %w", err)
	}
	defer draManager.Stop()

	plugins := pluginmanager.NewPluginManager(opts.registryDir, recorder)
	plugins.AddHandler(pluginregistration.DRAPlugin, draManager.GetWatcherHandler())
	go plugins.Run(ctx, sourcesReady, ctx.Done())

	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("cache of %v did not sync", typ)
		}
	}
	// The launcher waits for this marker before it reports the node ready.
	marker := filepath.Join(opts.stateDir, "ready")
	if err := os.WriteFile(marker, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o640); err != nil {
		return err
	}
	logger.Info("kubelet-harness ready", "pluginsRegistry", opts.registryDir)
	go pods.watchHealth(ctx, draManager.Updates())
	pods.run(ctx, 2)
	_ = os.Remove(marker)
	return nil
}
