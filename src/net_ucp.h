/* SPDX-License-Identifier: MIT */
/* The part of the UCP API (UCX 1.13 and later) that src/net_*.c use, declared here so that
 * building unimem needs no UCX: libucp.so.0 is loaded at run time with dlopen. The structs
 * are those of <ucp/api/ucp.h> 1.13; later versions only append fields, which a field_mask
 * leaves unread. tests/test_net_abi.c checks every size, offset and value against the
 * system's UCX headers where they are installed. Never installed. */
#ifndef UNIMEM_NET_UCP_H
#define UNIMEM_NET_UCP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef int8_t umi_ucs_status;  /* ucs_status_t: a packed enum, one byte */
typedef void *umi_ucs_status_ptr;  /* ucs_status_ptr_t */
typedef struct umi_ucp_context *umi_ucp_context_h;
typedef struct umi_ucp_config umi_ucp_config_t;
typedef struct umi_ucp_worker *umi_ucp_worker_h;
typedef struct umi_ucp_ep *umi_ucp_ep_h;
typedef struct umi_ucp_listener *umi_ucp_listener_h;
typedef struct umi_ucp_conn_request *umi_ucp_conn_request_h;
typedef struct umi_ucp_mem *umi_ucp_mem_h;
typedef struct umi_ucp_rkey *umi_ucp_rkey_h;

enum {
	UMI_UCS_OK = 0,
	UMI_UCS_INPROGRESS = 1,
	UMI_UCS_ERR_NO_MESSAGE = -1,
	UMI_UCS_ERR_NO_RESOURCE = -2,
	UMI_UCS_ERR_IO_ERROR = -3,
	UMI_UCS_ERR_NO_MEMORY = -4,
	UMI_UCS_ERR_INVALID_PARAM = -5,
	UMI_UCS_ERR_UNREACHABLE = -6,
	UMI_UCS_ERR_INVALID_ADDR = -7,
	UMI_UCS_ERR_NO_DEVICE = -14,
	UMI_UCS_ERR_BUSY = -15,
	UMI_UCS_ERR_CANCELED = -16,
	UMI_UCS_ERR_TIMED_OUT = -20,
	UMI_UCS_ERR_UNSUPPORTED = -22,
	UMI_UCS_ERR_REJECTED = -23,
	UMI_UCS_ERR_NOT_CONNECTED = -24,
	UMI_UCS_ERR_CONNECTION_RESET = -25,
	UMI_UCS_ERR_ENDPOINT_TIMEOUT = -80,
	UMI_UCS_ERR_LAST = -100,
};

/* UCS_PTR_IS_ERR / UCS_PTR_IS_PTR / UCS_PTR_STATUS of ucs/type/status.h. */
#define UMI_PTR_IS_ERR(p) (((uintptr_t)(p)) >= ((uintptr_t)UMI_UCS_ERR_LAST))
#define UMI_PTR_IS_PTR(p) (((uintptr_t)(p) - 1) < ((uintptr_t)UMI_UCS_ERR_LAST - 1))
#define UMI_PTR_STATUS(p) (UMI_PTR_IS_PTR(p) ? UMI_UCS_INPROGRESS : (umi_ucs_status)(intptr_t)(p))

#define UMI_BIT(i) (1ull << (i))
enum {
	UMI_UCP_PARAM_FIELD_FEATURES = UMI_BIT(0),
	UMI_UCP_PARAM_FIELD_MT_WORKERS_SHARED = UMI_BIT(5),
	UMI_UCP_PARAM_FIELD_NAME = UMI_BIT(8),
	UMI_UCP_FEATURE_RMA = UMI_BIT(1),
	UMI_UCP_FEATURE_WAKEUP = UMI_BIT(4),
	UMI_UCP_WORKER_PARAM_FIELD_THREAD_MODE = UMI_BIT(0),
	UMI_UCS_THREAD_MODE_SINGLE = 0,
	UMI_UCS_THREAD_MODE_SERIALIZED = 1,
	UMI_UCP_LISTENER_PARAM_FIELD_SOCK_ADDR = UMI_BIT(0),
	UMI_UCP_LISTENER_PARAM_FIELD_CONN_HANDLER = UMI_BIT(2),
	UMI_UCP_LISTENER_ATTR_FIELD_SOCKADDR = UMI_BIT(0),
	UMI_UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE = UMI_BIT(1),
	UMI_UCP_EP_PARAM_FIELD_ERR_HANDLER = UMI_BIT(2),
	UMI_UCP_EP_PARAM_FIELD_USER_DATA = UMI_BIT(3),
	UMI_UCP_EP_PARAM_FIELD_SOCK_ADDR = UMI_BIT(4),
	UMI_UCP_EP_PARAM_FIELD_FLAGS = UMI_BIT(5),
	UMI_UCP_EP_PARAM_FIELD_CONN_REQUEST = UMI_BIT(6),
	UMI_UCP_EP_PARAMS_FLAGS_CLIENT_SERVER = UMI_BIT(0),
	UMI_UCP_ERR_HANDLING_MODE_PEER = 1,
	UMI_UCP_EP_CLOSE_FLAG_FORCE = UMI_BIT(0),
	UMI_UCP_MEM_MAP_PARAM_FIELD_ADDRESS = UMI_BIT(0),
	UMI_UCP_MEM_MAP_PARAM_FIELD_LENGTH = UMI_BIT(1),
	UMI_UCP_MEM_MAP_PARAM_FIELD_FLAGS = UMI_BIT(2),
	UMI_UCP_MEM_MAP_PARAM_FIELD_PROT = UMI_BIT(3),
	UMI_UCP_MEM_MAP_PROT_LOCAL_READ = UMI_BIT(0),
	UMI_UCP_MEM_MAP_PROT_LOCAL_WRITE = UMI_BIT(1),
	UMI_UCP_MEM_MAP_PROT_REMOTE_READ = UMI_BIT(8),
	UMI_UCP_MEM_MAP_PROT_REMOTE_WRITE = UMI_BIT(9),
	UMI_UCP_OP_ATTR_FIELD_FLAGS = UMI_BIT(4),
};

typedef struct {
	const struct sockaddr *addr;
	socklen_t addrlen;
} umi_ucs_sock_addr_t;

typedef struct {
	uint64_t field_mask;
	uint64_t features;
	size_t request_size;
	void (*request_init)(void *request);
	void (*request_cleanup)(void *request);
	uint64_t tag_sender_mask;
	int mt_workers_shared;
	size_t estimated_num_eps;
	size_t estimated_num_ppn;
	const char *name;
} umi_ucp_params_t;

typedef struct {
	uint64_t field_mask;
	int thread_mode;  /* ucs_thread_mode_t */
	struct {
		unsigned long bits[1024 / (8 * sizeof(unsigned long))];
	} cpu_mask;
	unsigned events;
	void *user_data;
	int event_fd;
	uint64_t flags;
	const char *name;
	size_t am_alignment;
	uint64_t client_id;
} umi_ucp_worker_params_t;

typedef void (*umi_ucp_conn_cb)(umi_ucp_conn_request_h req, void *arg);
typedef void (*umi_ucp_err_cb)(void *arg, umi_ucp_ep_h ep, umi_ucs_status status);

typedef struct {
	uint64_t field_mask;
	umi_ucs_sock_addr_t sockaddr;
	struct {
		void (*cb)(umi_ucp_ep_h ep, void *arg);
		void *arg;
	} accept_handler;
	struct {
		umi_ucp_conn_cb cb;
		void *arg;
	} conn_handler;
} umi_ucp_listener_params_t;

typedef struct {
	uint64_t field_mask;
	struct sockaddr_storage sockaddr;
} umi_ucp_listener_attr_t;

typedef struct {
	uint64_t field_mask;
	const void *address;
	int err_mode;  /* ucp_err_handling_mode_t */
	struct {
		umi_ucp_err_cb cb;
		void *arg;
	} err_handler;
	void *user_data;
	unsigned flags;
	umi_ucs_sock_addr_t sockaddr;
	umi_ucp_conn_request_h conn_request;
	const char *name;
	umi_ucs_sock_addr_t local_sockaddr;
} umi_ucp_ep_params_t;

typedef struct {
	uint64_t field_mask;
	void *address;
	size_t length;
	unsigned flags;
	unsigned prot;
	int memory_type;  /* ucs_memory_type_t */
} umi_ucp_mem_map_params_t;

typedef struct {
	uint32_t op_attr_mask;
	uint32_t flags;
	void *request;
	void *cb;  /* a union of callback pointers */
	uint64_t datatype;
	void *user_data;
	void *reply_buffer;
	int memory_type;
	void *recv_info;  /* a union of pointers */
	umi_ucp_mem_h memh;
} umi_ucp_request_param_t;

/* The functions used, resolved from libucp.so.0 (and its libucs.so.0). */
struct umi_ucp {
	umi_ucs_status (*init_version)(unsigned major, unsigned minor, const umi_ucp_params_t *p,
				       const umi_ucp_config_t *config, umi_ucp_context_h *out);
	void (*cleanup)(umi_ucp_context_h ctx);
	umi_ucs_status (*config_read)(const char *env_prefix, const char *filename,
				      umi_ucp_config_t **out);
	umi_ucs_status (*config_modify)(umi_ucp_config_t *config, const char *name,
					const char *value);
	void (*config_release)(umi_ucp_config_t *config);
	umi_ucs_status (*worker_create)(umi_ucp_context_h ctx, const umi_ucp_worker_params_t *p,
					umi_ucp_worker_h *out);
	void (*worker_destroy)(umi_ucp_worker_h w);
	unsigned (*worker_progress)(umi_ucp_worker_h w);
	umi_ucs_status (*worker_get_efd)(umi_ucp_worker_h w, int *fd);
	umi_ucs_status (*worker_arm)(umi_ucp_worker_h w);
	umi_ucs_status (*worker_signal)(umi_ucp_worker_h w);
	umi_ucs_status (*listener_create)(umi_ucp_worker_h w, const umi_ucp_listener_params_t *p,
					  umi_ucp_listener_h *out);
	void (*listener_destroy)(umi_ucp_listener_h l);
	umi_ucs_status (*listener_query)(umi_ucp_listener_h l, umi_ucp_listener_attr_t *attr);
	umi_ucs_status (*listener_reject)(umi_ucp_listener_h l, umi_ucp_conn_request_h req);
	umi_ucs_status (*ep_create)(umi_ucp_worker_h w, const umi_ucp_ep_params_t *p,
				    umi_ucp_ep_h *out);
	umi_ucs_status_ptr (*ep_close_nbx)(umi_ucp_ep_h ep, const umi_ucp_request_param_t *p);
	umi_ucs_status_ptr (*ep_flush_nbx)(umi_ucp_ep_h ep, const umi_ucp_request_param_t *p);
	umi_ucs_status (*request_check_status)(void *req);
	void (*request_free)(void *req);
	umi_ucs_status (*mem_map)(umi_ucp_context_h ctx, const umi_ucp_mem_map_params_t *p,
				  umi_ucp_mem_h *out);
	umi_ucs_status (*mem_unmap)(umi_ucp_context_h ctx, umi_ucp_mem_h m);
	umi_ucs_status (*rkey_pack)(umi_ucp_context_h ctx, umi_ucp_mem_h m, void **buf,
				    size_t *len);
	void (*rkey_buffer_release)(void *buf);
	umi_ucs_status (*ep_rkey_unpack)(umi_ucp_ep_h ep, const void *buf, umi_ucp_rkey_h *out);
	void (*rkey_destroy)(umi_ucp_rkey_h k);
	umi_ucs_status_ptr (*get_nbx)(umi_ucp_ep_h ep, void *dst, size_t len, uint64_t raddr,
				      umi_ucp_rkey_h k, const umi_ucp_request_param_t *p);
	umi_ucs_status_ptr (*put_nbx)(umi_ucp_ep_h ep, const void *src, size_t len,
				      uint64_t raddr, umi_ucp_rkey_h k,
				      const umi_ucp_request_param_t *p);
	const char *(*status_string)(umi_ucs_status s);
};

#endif
