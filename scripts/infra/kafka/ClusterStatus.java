// The state of the local three-broker cluster, through the Admin API: the brokers the cluster
// knows, and its KRaft quorum (leader, voters, how far each has replicated the metadata log). Run by
// scripts/infra.sh with Java's single-file launcher:
//   java -cp "<kafka libs>/*" ClusterStatus.java <bootstrap> <expected brokers>
// Exits 0 when that many brokers are registered and the quorum has a leader, 1 otherwise.
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.QuorumInfo;
import org.apache.kafka.common.Node;

public class ClusterStatus {
  public static void main(String[] args) throws Exception {
    if (args.length != 2) {
      System.err.println("usage: ClusterStatus <bootstrap> <expected brokers>");
      System.exit(2);
    }
    int expected = Integer.parseInt(args[1]);
    Properties props = new Properties();
    props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "5000");
    props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "8000");
    try (Admin admin = Admin.create(props)) {
      var nodes = admin.describeCluster().nodes().get(8, TimeUnit.SECONDS);
      StringBuilder brokers = new StringBuilder();
      for (Node node : nodes) brokers.append(brokers.length() == 0 ? "" : ", ").append(node.id()).append('@').append(node.host()).append(':').append(node.port());
      QuorumInfo quorum = admin.describeMetadataQuorum().quorumInfo().get(8, TimeUnit.SECONDS);
      StringBuilder voters = new StringBuilder();
      for (QuorumInfo.ReplicaState voter : quorum.voters()) {
        voters.append(voters.length() == 0 ? "" : ", ").append(voter.replicaId()).append(" at offset ").append(voter.logEndOffset());
      }
      System.out.println("brokers registered: " + nodes.size() + " (" + brokers + ")");
      System.out.println("controller leader: node " + quorum.leaderId() + " (epoch " + quorum.leaderEpoch() + "); voters: " + voters);
      System.exit(nodes.size() == expected && quorum.leaderId() >= 0 ? 0 : 1);
    } catch (Exception e) {
      System.out.println("the cluster did not answer: " + e.getMessage());
      System.exit(1);
    }
  }
}
