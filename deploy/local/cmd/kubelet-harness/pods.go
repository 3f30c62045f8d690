package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/wait"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/kubelet/cm/dra"
	"k8s.io/kubernetes/pkg/kubelet/cm/resourceupdates"
)

// podWorker plays the kubelet's pod lifecycle for one node: prepare claims, report Running,
// and on deletion unprepare claims before removing the pod object.
type podWorker struct {
	client   kubernetes.Interface
	lister   corelisters.PodLister
	synced   cache.InformerSynced
	recorder record.EventRecorder
	nodeName string
	dra      *dra.Manager
	queue    workqueue.TypedRateLimitingInterface[types.NamespacedName]

	mu sync.Mutex
	// Pods whose claims may be prepared, kept after the object is gone so that they can still
	// be unprepared (the kubelet keeps the same knowledge in its pod manager).
	known map[types.NamespacedName]*v1.Pod
}

func newPodWorker(client kubernetes.Interface, informer coreinformers.PodInformer,
	recorder record.EventRecorder, nodeName string) *podWorker {
	w := &podWorker{
		client:   client,
		lister:   informer.Lister(),
		synced:   informer.Informer().HasSynced,
		recorder: recorder,
		nodeName: nodeName,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[types.NamespacedName](
				200*time.Millisecond, 10*time.Second),
			workqueue.TypedRateLimitingQueueConfig[types.NamespacedName]{Name: "pods"}),
		known: map[types.NamespacedName]*v1.Pod{},
	}
	enqueue := func(obj any) {
		if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		if pod, ok := obj.(*v1.Pod); ok {
			w.queue.Add(types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name})
		}
	}
	_, _ = informer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	})
	return w
}

// activePods feeds the DRA manager's reconcile loop, which unprepares claims of pods not listed.
func (w *podWorker) activePods() []*v1.Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]*v1.Pod, 0, len(w.known))
	for _, pod := range w.known {
		out = append(out, pod)
	}
	return out
}

func (w *podWorker) run(ctx context.Context, workers int) {
	defer w.queue.ShutDown()
	for range workers {
		go wait.UntilWithContext(ctx, w.work, time.Second)
	}
	<-ctx.Done()
}

func (w *podWorker) work(ctx context.Context) {
	for {
		key, quit := w.queue.Get()
		if quit {
			return
		}
		err := w.sync(ctx, key)
		if err != nil {
			klog.FromContext(ctx).Info("Pod sync failed, will retry", "pod", key, "err", err)
			w.queue.AddRateLimited(key)
		} else {
			w.queue.Forget(key)
		}
		w.queue.Done(key)
	}
}

func (w *podWorker) sync(ctx context.Context, key types.NamespacedName) error {
	logger := klog.FromContext(ctx).WithValues("pod", key)
	pod, err := w.lister.Pods(key.Namespace).Get(key.Name)
	if apierrors.IsNotFound(err) {
		return w.forget(ctx, key)
	}
	if err != nil {
		return err
	}
	w.mu.Lock()
	if old, ok := w.known[key]; ok && old.UID != pod.UID {
		// Same name, new pod: the old one must be unprepared first.
		w.mu.Unlock()
		if err := w.forget(ctx, key); err != nil {
			return err
		}
		w.mu.Lock()
	}
	w.known[key] = pod
	w.mu.Unlock()

	switch {
	case pod.DeletionTimestamp != nil:
		if err := w.dra.UnprepareResources(ctx, pod); err != nil {
			return err
		}
		logger.Info("Claims unprepared, removing pod")
		// The kubelet's final delete: grace period zero, guarded by the UID.
		err := w.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: new(int64),
			Preconditions:      &metav1.Preconditions{UID: &pod.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return err
		}
		return nil
	case pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed:
		return w.dra.UnprepareResources(ctx, pod)
	case pod.Status.Phase == v1.PodRunning:
		return w.syncHealth(ctx, pod)
	}
	if err := w.dra.PrepareResources(ctx, pod); err != nil {
		w.recorder.Event(pod, v1.EventTypeWarning, "FailedPrepareDynamicResources", err.Error())
		return err
	}
	logger.Info("Claims prepared, pod running")
	status := runningStatus(pod, time.Now())
	w.dra.UpdateAllocatedResourcesStatus(logger, pod, &status.Status)
	_, err = w.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, status, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("update status: %w", err)
	}
	w.recorder.Event(pod, v1.EventTypeNormal, "Started", "claims prepared by kubelet-harness")
	return nil
}

// syncHealth writes the devices' health (from the plugins' health streams, as cached by the DRA
// manager) into the containers' allocatedResourcesStatus, like the kubelet's status manager.
func (w *podWorker) syncHealth(ctx context.Context, pod *v1.Pod) error {
	updated := pod.DeepCopy()
	w.dra.UpdateAllocatedResourcesStatus(klog.FromContext(ctx), pod, &updated.Status)
	if apiequality.Semantic.DeepEqual(updated.Status, pod.Status) {
		return nil
	}
	_, err := w.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("update resource health: %w", err)
	}
	return nil
}

// watchHealth requeues the pods whose devices changed health.
func (w *podWorker) watchHealth(ctx context.Context, updates <-chan resourceupdates.Update) {
	for {
		select {
		case <-ctx.Done():
			return
		case update := <-updates:
			uids := sets.New(update.PodUIDs...)
			w.mu.Lock()
			for key, pod := range w.known {
				if uids.Has(string(pod.UID)) {
					w.queue.Add(key)
				}
			}
			w.mu.Unlock()
		}
	}
}

// forget unprepares the claims of a pod object that no longer exists.
func (w *podWorker) forget(ctx context.Context, key types.NamespacedName) error {
	w.mu.Lock()
	pod, ok := w.known[key]
	w.mu.Unlock()
	if !ok {
		return nil
	}
	if err := w.dra.UnprepareResources(ctx, pod); err != nil {
		return err
	}
	w.mu.Lock()
	if cur, ok := w.known[key]; ok && cur.UID == pod.UID {
		delete(w.known, key)
	}
	w.mu.Unlock()
	return nil
}
