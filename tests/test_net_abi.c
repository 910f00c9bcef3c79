/* SPDX-License-Identifier: MIT */
/* src/net_ucp.h (our own declarations of the UCP API) against the UCX headers of the
 * system (Debian's libucx-dev): every size, offset and value the library uses must agree.
 * All checks are at compile time; built only where <ucp/api/ucp.h> exists. */
#include <ucp/api/ucp.h>
#include <stddef.h>

#include "../src/net_ucp.h"

#define SAME_FIELD(a, b, f) \
	_Static_assert(offsetof(a, f) == offsetof(b, f) && sizeof(((a *)0)->f) == sizeof(((b *)0)->f), \
		       #a "." #f " differs")
#define SAME(a, b) _Static_assert((long long)(a) == (long long)(b), #a " differs")

_Static_assert(sizeof(ucs_status_t) == sizeof(umi_ucs_status), "ucs_status_t");
_Static_assert(sizeof(ucs_sock_addr_t) == sizeof(umi_ucs_sock_addr_t), "ucs_sock_addr_t");
SAME_FIELD(ucs_sock_addr_t, umi_ucs_sock_addr_t, addr);
SAME_FIELD(ucs_sock_addr_t, umi_ucs_sock_addr_t, addrlen);

_Static_assert(sizeof(ucp_params_t) == sizeof(umi_ucp_params_t), "ucp_params_t");
SAME_FIELD(ucp_params_t, umi_ucp_params_t, field_mask);
SAME_FIELD(ucp_params_t, umi_ucp_params_t, features);
SAME_FIELD(ucp_params_t, umi_ucp_params_t, mt_workers_shared);
SAME_FIELD(ucp_params_t, umi_ucp_params_t, name);

_Static_assert(sizeof(ucp_worker_params_t) == sizeof(umi_ucp_worker_params_t), "ucp_worker_params_t");
SAME_FIELD(ucp_worker_params_t, umi_ucp_worker_params_t, field_mask);
SAME_FIELD(ucp_worker_params_t, umi_ucp_worker_params_t, thread_mode);
SAME_FIELD(ucp_worker_params_t, umi_ucp_worker_params_t, cpu_mask);
SAME_FIELD(ucp_worker_params_t, umi_ucp_worker_params_t, client_id);

_Static_assert(sizeof(ucp_listener_params_t) == sizeof(umi_ucp_listener_params_t), "ucp_listener_params_t");
SAME_FIELD(ucp_listener_params_t, umi_ucp_listener_params_t, sockaddr);
SAME_FIELD(ucp_listener_params_t, umi_ucp_listener_params_t, accept_handler);
SAME_FIELD(ucp_listener_params_t, umi_ucp_listener_params_t, conn_handler);
SAME_FIELD(ucp_listener_params_t, umi_ucp_listener_params_t, conn_handler.cb);
SAME_FIELD(ucp_listener_params_t, umi_ucp_listener_params_t, conn_handler.arg);

_Static_assert(sizeof(ucp_listener_attr_t) == sizeof(umi_ucp_listener_attr_t), "ucp_listener_attr_t");
SAME_FIELD(ucp_listener_attr_t, umi_ucp_listener_attr_t, sockaddr);

_Static_assert(sizeof(ucp_ep_params_t) == sizeof(umi_ucp_ep_params_t), "ucp_ep_params_t");
SAME_FIELD(ucp_ep_params_t, umi_ucp_ep_params_t, field_mask);
SAME_FIELD(ucp_ep_params_t, umi_ucp_ep_params_t, address);
SAME_FIELD(ucp_ep_params_t, umi_ucp_ep_params_t, err_mode);
SAME_FIELD(ucp_ep_params_t, umi_ucp_ep_params_t, err_handler);
SAME_FIELD(ucp_ep_params_t, umi_ucp_ep_params_t, err_handler.cb);
SAME_FIELD(ucp_ep_params_t, umi_ucp_ep_params_t, err_handler.arg);
SAME_FIELD(ucp_ep_params_t, umi_ucp_ep_params_t, user_data);
SAME_FIELD(ucp_ep_params_t, umi_ucp_ep_params_t, flags);
SAME_FIELD(ucp_ep_params_t, umi_ucp_ep_params_t, sockaddr);
SAME_FIELD(ucp_ep_params_t, umi_ucp_ep_params_t, conn_request);
SAME_FIELD(ucp_ep_params_t, umi_ucp_ep_params_t, name);
SAME_FIELD(ucp_ep_params_t, umi_ucp_ep_params_t, local_sockaddr);

_Static_assert(sizeof(ucp_mem_map_params_t) == sizeof(umi_ucp_mem_map_params_t), "ucp_mem_map_params_t");
SAME_FIELD(ucp_mem_map_params_t, umi_ucp_mem_map_params_t, address);
SAME_FIELD(ucp_mem_map_params_t, umi_ucp_mem_map_params_t, length);
SAME_FIELD(ucp_mem_map_params_t, umi_ucp_mem_map_params_t, flags);
SAME_FIELD(ucp_mem_map_params_t, umi_ucp_mem_map_params_t, prot);
SAME_FIELD(ucp_mem_map_params_t, umi_ucp_mem_map_params_t, memory_type);

_Static_assert(sizeof(ucp_request_param_t) == sizeof(umi_ucp_request_param_t), "ucp_request_param_t");
SAME_FIELD(ucp_request_param_t, umi_ucp_request_param_t, op_attr_mask);
SAME_FIELD(ucp_request_param_t, umi_ucp_request_param_t, flags);
SAME_FIELD(ucp_request_param_t, umi_ucp_request_param_t, request);
SAME_FIELD(ucp_request_param_t, umi_ucp_request_param_t, cb);
SAME_FIELD(ucp_request_param_t, umi_ucp_request_param_t, datatype);
SAME_FIELD(ucp_request_param_t, umi_ucp_request_param_t, memh);

SAME(UCS_OK, UMI_UCS_OK); SAME(UCS_INPROGRESS, UMI_UCS_INPROGRESS);
SAME(UCS_ERR_UNREACHABLE, UMI_UCS_ERR_UNREACHABLE); SAME(UCS_ERR_REJECTED, UMI_UCS_ERR_REJECTED);
SAME(UCS_ERR_CONNECTION_RESET, UMI_UCS_ERR_CONNECTION_RESET);
SAME(UCS_ERR_ENDPOINT_TIMEOUT, UMI_UCS_ERR_ENDPOINT_TIMEOUT);
SAME(UCS_ERR_TIMED_OUT, UMI_UCS_ERR_TIMED_OUT); SAME(UCS_ERR_NOT_CONNECTED, UMI_UCS_ERR_NOT_CONNECTED);
SAME(UCS_ERR_CANCELED, UMI_UCS_ERR_CANCELED); SAME(UCS_ERR_NO_MEMORY, UMI_UCS_ERR_NO_MEMORY);
SAME(UCS_ERR_INVALID_PARAM, UMI_UCS_ERR_INVALID_PARAM); SAME(UCS_ERR_INVALID_ADDR, UMI_UCS_ERR_INVALID_ADDR);
SAME(UCS_ERR_BUSY, UMI_UCS_ERR_BUSY); SAME(UCS_ERR_UNSUPPORTED, UMI_UCS_ERR_UNSUPPORTED);
SAME(UCS_ERR_IO_ERROR, UMI_UCS_ERR_IO_ERROR); SAME(UCS_ERR_LAST, UMI_UCS_ERR_LAST);
SAME(UCP_PARAM_FIELD_FEATURES, UMI_UCP_PARAM_FIELD_FEATURES);
SAME(UCP_PARAM_FIELD_MT_WORKERS_SHARED, UMI_UCP_PARAM_FIELD_MT_WORKERS_SHARED);
SAME(UCP_PARAM_FIELD_NAME, UMI_UCP_PARAM_FIELD_NAME);
SAME(UCP_FEATURE_RMA, UMI_UCP_FEATURE_RMA); SAME(UCP_FEATURE_WAKEUP, UMI_UCP_FEATURE_WAKEUP);
SAME(UCP_WORKER_PARAM_FIELD_THREAD_MODE, UMI_UCP_WORKER_PARAM_FIELD_THREAD_MODE);
SAME(UCS_THREAD_MODE_SINGLE, UMI_UCS_THREAD_MODE_SINGLE);
SAME(UCS_THREAD_MODE_SERIALIZED, UMI_UCS_THREAD_MODE_SERIALIZED);
SAME(UCP_LISTENER_PARAM_FIELD_SOCK_ADDR, UMI_UCP_LISTENER_PARAM_FIELD_SOCK_ADDR);
SAME(UCP_LISTENER_PARAM_FIELD_CONN_HANDLER, UMI_UCP_LISTENER_PARAM_FIELD_CONN_HANDLER);
SAME(UCP_LISTENER_ATTR_FIELD_SOCKADDR, UMI_UCP_LISTENER_ATTR_FIELD_SOCKADDR);
SAME(UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE, UMI_UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE);
SAME(UCP_EP_PARAM_FIELD_ERR_HANDLER, UMI_UCP_EP_PARAM_FIELD_ERR_HANDLER);
SAME(UCP_EP_PARAM_FIELD_USER_DATA, UMI_UCP_EP_PARAM_FIELD_USER_DATA);
SAME(UCP_EP_PARAM_FIELD_SOCK_ADDR, UMI_UCP_EP_PARAM_FIELD_SOCK_ADDR);
SAME(UCP_EP_PARAM_FIELD_FLAGS, UMI_UCP_EP_PARAM_FIELD_FLAGS);
SAME(UCP_EP_PARAM_FIELD_CONN_REQUEST, UMI_UCP_EP_PARAM_FIELD_CONN_REQUEST);
SAME(UCP_EP_PARAMS_FLAGS_CLIENT_SERVER, UMI_UCP_EP_PARAMS_FLAGS_CLIENT_SERVER);
SAME(UCP_ERR_HANDLING_MODE_PEER, UMI_UCP_ERR_HANDLING_MODE_PEER);
SAME(UCP_EP_CLOSE_FLAG_FORCE, UMI_UCP_EP_CLOSE_FLAG_FORCE);
SAME(UCP_MEM_MAP_PARAM_FIELD_ADDRESS, UMI_UCP_MEM_MAP_PARAM_FIELD_ADDRESS);
SAME(UCP_MEM_MAP_PARAM_FIELD_LENGTH, UMI_UCP_MEM_MAP_PARAM_FIELD_LENGTH);
SAME(UCP_MEM_MAP_PARAM_FIELD_FLAGS, UMI_UCP_MEM_MAP_PARAM_FIELD_FLAGS);
SAME(UCP_MEM_MAP_PARAM_FIELD_PROT, UMI_UCP_MEM_MAP_PARAM_FIELD_PROT);
SAME(UCP_MEM_MAP_PROT_LOCAL_READ, UMI_UCP_MEM_MAP_PROT_LOCAL_READ);
SAME(UCP_MEM_MAP_PROT_LOCAL_WRITE, UMI_UCP_MEM_MAP_PROT_LOCAL_WRITE);
SAME(UCP_MEM_MAP_PROT_REMOTE_READ, UMI_UCP_MEM_MAP_PROT_REMOTE_READ);
SAME(UCP_MEM_MAP_PROT_REMOTE_WRITE, UMI_UCP_MEM_MAP_PROT_REMOTE_WRITE);
SAME(UCP_OP_ATTR_FIELD_FLAGS, UMI_UCP_OP_ATTR_FIELD_FLAGS);
SAME(UCP_API_MAJOR, 1);
_Static_assert(UCP_API_MINOR >= 13, "UCX 1.13 or later");

/* The functions: our pointer types against the real prototypes, handles aside. */
#define SAME_FN(real, ours) \
	_Static_assert(sizeof(&real) == sizeof(((struct umi_ucp *)0)->ours), #real)
SAME_FN(ucp_get_nbx, get_nbx);

int main(void)
{
	/* The status macros agree on a few values. */
	void *p[] = { NULL, (void *)(intptr_t)UCS_ERR_CONNECTION_RESET, (void *)&p };
	for (int i = 0; i < 3; i++)
		if (UCS_PTR_IS_ERR(p[i]) != UMI_PTR_IS_ERR(p[i]) ||
		    UCS_PTR_IS_PTR(p[i]) != UMI_PTR_IS_PTR(p[i]) ||
		    (int)UCS_PTR_STATUS(p[i]) != UMI_PTR_STATUS(p[i]))
			return 1;
	return 0;
}
