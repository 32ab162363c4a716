package gateway

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	dromosv1 "github.com/dromos-dev/dromos/api/proto/dromos/v1"
)

func (s *grpcServer) ListConnections(ctx context.Context, in *dromosv1.ListConnectionsRequest) (*dromosv1.ListConnectionsResponse, error) {
	c, err := s.caller(ctx)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	q := ConnectionQuery{UserID: in.GetUserId(), ProviderName: in.GetProviderName(), Status: in.GetStatus(),
		Limit: int(in.GetLimit()), Cursor: in.GetCursor()}
	page, err := s.g.svc.ListConnections(ctx, c, q)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out := &dromosv1.ListConnectionsResponse{NextCursor: page.NextCursor}
	for _, lc := range page.Connections {
		out.Connections = append(out.Connections, &dromosv1.ListedConnection{ConnectionId: lc.ConnectionID,
			Connection: checkMessage(lc.ConnectionStatus)})
	}
	return out, nil
}

func (s *grpcServer) GetConnection(ctx context.Context, in *dromosv1.GetConnectionRequest) (*dromosv1.GetConnectionResponse, error) {
	c, err := s.caller(ctx)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	rec, err := s.g.svc.GetConnection(ctx, c, in.GetConnectionId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out := &dromosv1.GetConnectionResponse{ConnectionId: rec.ConnectionID, Connection: checkMessage(rec.ConnectionStatus),
		UserId: rec.UserID, ProviderName: rec.ProviderName, ProviderId: rec.ProviderID, Scopes: rec.Scopes,
		CreatedAt: timestamppb.New(rec.CreatedAt), UpdatedAt: timestamppb.New(rec.UpdatedAt)}
	if rec.LastRefreshAt != nil {
		out.LastRefreshAt = timestamppb.New(*rec.LastRefreshAt)
	}
	return out, nil
}
